"""Settlement status on the account stream. Messages are defined in exchange.realtime.messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from exchange.realtime import messages
from exchange.realtime.messages import SettlementEvent
from exchange.realtime.publishing import send
from exchange.trading.models import Trade

# Kept for importers of the old names.
MARKET_EVENTS = messages.MARKET_EVENTS
USER_EVENTS = messages.USER_EVENTS
SETTLEMENT_EVENTS = messages.SETTLEMENT_EVENTS


def settlement_event(trade: Trade, **details: Any) -> SettlementEvent:
    """One trade's settlement status as the user socket shows it; ``details`` are the optional
    fields of messages.SettlementEvent (batch_id, tx_hash, confirmations)."""
    return {
        "type": "settlement",
        "trade_id": trade.trade_id,
        "market": trade.market.symbol,
        "status": trade.settlement_status,
        **details,
    }  # type: ignore[typeddict-item]


def publish_settlement_status(trades: Iterable[Trade], **details: Any) -> None:
    """Tell the maker and the taker of each trade its current settlement status.

    Call it after the status change commits (``transaction.on_commit``). Best effort, like the
    worker's publishing: a client that missed it reads /api/v1/fills.
    """
    by_account: dict[int, list[SettlementEvent]] = {}
    for trade in trades:
        event = settlement_event(trade, **details)
        for account_id in {trade.maker_account_id, trade.taker_account_id}:
            by_account.setdefault(account_id, []).append(event)
    for account_id, events in by_account.items():
        send("settlement", messages.account_group(account_id), messages.settlement_events(events))
