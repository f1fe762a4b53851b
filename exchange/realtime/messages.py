"""Every message that crosses a process boundary on its way to a websocket, defined once.

Producers (the matching worker, the ledger, settlement, withdrawals) send *group messages*
through the channel layer (Redis); the consumers (exchange.realtime.consumers) turn them into
*frames* on the sockets. Both sides build and read them through the types and builders here,
and tests/realtime validates every message and frame they exchange against these types
(``tests/realtime/schemas.py``).

TypedDicts (typing_extensions', which pydantic validates on Python 3.11), not classes: they are
plain dicts at run time (what the channel layer's JSON serialiser takes, at no cost on the
worker's hot path) and types for the checker and the tests' validation. Amounts are integers in
base units; prices in quote base units per one whole base unit.

The market stream's position rules and its checksum are specified in docs/API.md (streams).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Literal, NotRequired

from typing_extensions import TypedDict

Side = Literal["buy", "sell"]
Level = list[int]  # [price, quantity]

MARKET_EVENTS = "market.events"  # to market.{symbol}, from the matching worker
USER_EVENTS = "user.events"  # to account.{id}: worker (fills, orders), ledger, withdrawals
SETTLEMENT_EVENTS = "settlement.events"  # to account.{id}, from settlement

CHECKSUM_LEVELS = 10


def market_group(symbol: str) -> str:
    return f"market.{symbol}"


def account_group(account_id: int) -> str:
    return f"account.{account_id}"


def book_checksum(bids: Iterable[Iterable[int]], asks: Iterable[Iterable[int]]) -> int:
    """CRC32 of the top 10 levels (docs/API.md): the asks best (lowest) first, then the bids
    best (highest) first, each level its price then its quantity as decimal integers, all
    concatenated without separators; zlib's CRC32 of that ASCII text, unsigned."""
    parts: list[str] = []
    for side in (asks, bids):
        for (price, quantity), _ in zip(side, range(CHECKSUM_LEVELS), strict=False):
            parts.append(f"{price}{quantity}")
    return zlib.crc32("".join(parts).encode("ascii"))


# ---------------------------------------------------------------- market: worker -> consumers
class LevelEvent(TypedDict):
    """A level's new total (0 removes it); ``checksum``: the book's once this is applied."""

    type: Literal["level"]
    event_seq: int
    seq: int
    side: Side
    price: int
    quantity: int
    checksum: int


class TradeEvent(TypedDict):
    type: Literal["trade"]
    event_seq: int
    seq: int
    trade_id: str
    price: int
    quantity: int
    taker_side: Side
    checksum: int


MarketEvent = LevelEvent | TradeEvent


class MarketEvents(TypedDict):
    """One committed batch (or several, merged) of a market: its public events, and the engine
    positions it starts from (``prev_event_seq``, the previous batch's ``event_seq``) and ends
    at. Sent for every batch, even without public events, so the positions chain."""

    type: Literal["market.events"]
    prev_event_seq: int
    event_seq: int
    events: list[MarketEvent]


def market_events(prev_event_seq: int, event_seq: int, events: list[MarketEvent]) -> MarketEvents:
    return {
        "type": MARKET_EVENTS,
        "prev_event_seq": prev_event_seq,
        "event_seq": event_seq,
        "events": events,
    }


# ------------------------------------------------------------------ market: consumer -> client
class SnapshotFrame(TypedDict):
    type: Literal["snapshot"]
    reason: Literal["connect", "requested", "gap"]
    market: str
    seq: int
    event_seq: int
    bids: list[Level]
    asks: list[Level]
    checksum: int


class LevelFrame(LevelEvent):
    """A level event as the client gets it: ``prev_event_seq`` is the ``event_seq`` of the
    previous snapshot, level or trade frame on this connection."""

    prev_event_seq: int


class TradeFrame(TradeEvent):
    prev_event_seq: int


class MarketHeartbeatFrame(TypedDict):
    type: Literal["heartbeat"]
    event_seq: int


# -------------------------------------------------------------- account: producers -> consumers
class FillEvent(TypedDict):
    type: Literal["fill"]
    market: str
    event_seq: int
    seq: int
    trade_id: str
    price: int
    quantity: int
    taker_side: Side
    order_id: int
    side: Side
    liquidity: Literal["maker", "taker"]
    fee: int


class OrderEvent(TypedDict):
    type: Literal["order"]
    market: str
    order_id: int
    client_order_id: str
    status: str
    reason: str
    filled_quantity: int
    remaining_quantity: int
    price: int | None  # None: a market order
    quantity: int  # total, filled included (an amend may change it)


class BalanceEvent(TypedDict):
    """An account's balance of one asset after a committed ledger posting. ``version`` grows by
    one with every change of the balance: of two frames, the higher version is the newer."""

    type: Literal["balance"]
    asset: str
    available: int
    held: int
    version: int


class WithdrawalEvent(TypedDict):
    type: Literal["withdrawal"]
    id: str
    asset: str
    amount: int
    destination: str
    state: str
    hold_status: str
    tx_hash: str | None
    confirmations: int
    updated_at: str | None


UserEvent = FillEvent | OrderEvent | BalanceEvent | WithdrawalEvent


class UserEvents(TypedDict):
    type: Literal["user.events"]
    events: list[UserEvent]


def user_events(events: list[UserEvent]) -> UserEvents:
    return {"type": USER_EVENTS, "events": events}


def balance_event(asset: str, available: int, held: int, version: int) -> BalanceEvent:
    return {
        "type": "balance",
        "asset": asset,
        "available": available,
        "held": held,
        "version": version,
    }


class SettlementEvent(TypedDict):
    """A trade's settlement status; its batch, transaction and depth once known."""

    type: Literal["settlement"]
    trade_id: str
    market: str
    status: str
    batch_id: NotRequired[int]
    tx_hash: NotRequired[str]
    confirmations: NotRequired[int]


class SettlementEvents(TypedDict):
    type: Literal["settlement.events"]
    events: list[SettlementEvent]


def settlement_events(events: list[SettlementEvent]) -> SettlementEvents:
    return {"type": SETTLEMENT_EVENTS, "events": events}


GroupMessage = MarketEvents | UserEvents | SettlementEvents


# ------------------------------------------------------------------- frames any socket can get
class HeartbeatFrame(TypedDict):
    type: Literal["heartbeat"]


class PongFrame(TypedDict):
    type: Literal["pong"]


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    message: str


class AuthenticatedFrame(TypedDict):
    type: Literal["authenticated"]
    account_id: int
    address: str
    expires_at: str


MarketFrame = (
    SnapshotFrame | LevelFrame | TradeFrame | MarketHeartbeatFrame | PongFrame | ErrorFrame
)
UserFrame = (
    AuthenticatedFrame
    | FillEvent
    | OrderEvent
    | BalanceEvent
    | WithdrawalEvent
    | SettlementEvent
    | HeartbeatFrame
    | PongFrame
    | ErrorFrame
)
