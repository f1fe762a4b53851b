"""A seeded stream of order commands, written to the command log the way the trading services do.

``order_place`` verifies an EIP-712 signature (~1 ms of CPU) and runs the risk checks for each
order; a crash test or a benchmark needs thousands of commands per second without measuring
that. ``CommandWriter`` writes what ``order_place`` / ``order_cancel`` / ``orders_cancel_all``
leave behind — the hold journal entry, the Order row, the sequenced OrderCommand and a NOTIFY —
for many commands per transaction, taking the locks in the same order (balances, then the market's
sequence row). Signatures and risk limits are not the worker's business.

Used by tests/matching_worker and by bench/matching_worker.py.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.ledger.models import Bucket, JournalEntry
from exchange.ledger.services import Line, NewEntry, credit_deposit, post_entries
from exchange.markets.models import Asset, Market
from exchange.matching_worker.effects import buy_hold
from exchange.trading.models import MarketSequence, Order, OrderCommand
from exchange.trading.services import NOTIFY_CHANNEL
from tests.factories import market_make

# (symbol, mid price in quote base units per whole base unit)
MARKETS = {"WETH-USDC": 2_000 * 10**6, "WBTC-USDC": 60_000 * 10**6}
FUNDING = {"USDC": 10**16, "WETH": 10**24, "WBTC": 10**14}
STP_MODES = ("cancel_taker", "cancel_maker", "cancel_both", "decrement_and_cancel")


def setup_markets() -> dict[str, Market]:
    """The demo market (bootstrap_demo) and a second one like it, WBTC-USDC."""
    call_command("bootstrap_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = Market.objects.get(symbol="WETH-USDC")
    market = market_make("WBTC", demo.quote, maker_fee_bps=1, taker_fee_bps=4)
    market.full_clean()
    return {
        m.symbol: m
        for m in Market.objects.select_related("base", "quote").filter(symbol__in=MARKETS)
    }


def make_accounts(count: int) -> list[int]:
    """Trader accounts funded in every asset through the ledger's deposit service."""
    assets = {a.symbol: a for a in Asset.objects.filter(symbol__in=FUNDING)}
    ids = []
    for _ in range(count):
        account = Account.objects.create(address="0x" + secrets.token_hex(20))
        for symbol, amount in FUNDING.items():
            credit_deposit(
                account=account,
                asset=assets[symbol],
                amount=amount,
                reference=f"stream-funding:{account.pk}:{symbol}",
            )
        ids.append(account.pk)
    return ids


# ------------------------------------------------------------------------------------ commands
@dataclass(frozen=True, slots=True)
class Place:
    market: str
    account: int
    client_order_id: str
    side: str
    order_type: str  # limit | market
    price: int | None  # quote base units; a market order's protection price
    quantity: int  # base units
    time_in_force: str
    post_only: bool
    stp: str
    lifetime: float  # seconds until the order expires


@dataclass(frozen=True, slots=True)
class Cancel:
    market: str
    account: int
    client_order_id: str  # of an earlier Place (maybe already done: the engine then rejects)


@dataclass(frozen=True, slots=True)
class CancelAll:
    market: str
    account: int
    side: str | None


Spec = Place | Cancel | CancelAll


class StreamGenerator:
    """Commands around a fixed mid price: resting limits on both sides, marketable limits,
    IOC, FOK, post-only and market orders, cancels of recent orders and cancel-alls, from few
    enough accounts that self-trade prevention (every mode) fires too."""

    def __init__(
        self,
        markets: dict[str, Market],
        accounts: list[int],
        *,
        seed: int = 7,
        short_lived: float = 0.0,
        id_base: int = 0,
    ) -> None:
        self.markets = markets
        self.accounts = accounts
        self.random = random.Random(seed)
        self.short_lived = short_lived  # share of orders expiring within seconds
        self.recent: dict[str, list[tuple[int, str]]] = {symbol: [] for symbol in markets}
        self.count = id_base  # client order ids and nonces continue from here
        self.count_commands = 0

    def next(self) -> Spec:
        self.count_commands += 1
        r = self.random
        symbol = r.choice(list(self.markets))
        market = self.markets[symbol]
        account = r.choice(self.accounts)
        roll = r.random()
        recent = self.recent[symbol]
        if roll < 0.18 and recent:
            owner, client_order_id = recent[-r.randint(1, min(len(recent), 300))]
            return Cancel(symbol, owner, client_order_id)
        if roll < 0.20:
            return CancelAll(symbol, account, r.choice([None, "buy", "sell"]))
        self.count += 1
        client_order_id = f"s{self.count}"
        side = r.choice(["buy", "sell"])
        mid = MARKETS[symbol] // market.tick_size
        lots = r.choice([1, 1, 2, 3, 5, 8, 13, 20])
        quantity = lots * market.lot_size
        kind = r.random()
        # Passive orders sit 0-15 ticks from the mid; marketable ones reach up to 5 ticks
        # through it.
        away = r.randint(0, 15) if kind < 0.62 else -r.randint(0, 5)
        ticks = mid - away if side == "buy" else mid + away
        price = ticks * market.tick_size
        order_type, tif, post_only = "limit", "gtc", False
        if 0.62 <= kind < 0.72:
            tif = "ioc"
        elif 0.72 <= kind < 0.76:
            tif = "fok"
        elif 0.76 <= kind < 0.82:
            post_only = True
        elif 0.82 <= kind < 0.88:
            order_type, tif = "market", "ioc"
            if side == "sell" and r.random() < 0.5:
                price = None  # a market sell needs no protection price
        stp = r.choice(STP_MODES) if r.random() < 0.3 else market.default_stp
        lifetime = r.uniform(1.0, 4.0) if r.random() < self.short_lived else 86_400.0
        recent.append((account, client_order_id))
        if len(recent) > 2_000:
            del recent[:1_000]
        return Place(
            symbol,
            account,
            client_order_id,
            side,
            order_type,
            price,
            quantity,
            tif,
            post_only,
            stp,
            lifetime,
        )

    def take(self, count: int) -> list[Spec]:
        return [self.next() for _ in range(count)]


class CommandWriter:
    """Writes specs to the command log, many per transaction, as the trading services would."""

    def __init__(self, markets: dict[str, Market]) -> None:
        self.markets = markets
        self.order_ids: dict[str, int] = {}  # client order id -> Order pk
        for market in markets.values():
            MarketSequence.objects.get_or_create(market=market)

    def hold(self, spec: Place) -> tuple[int, int]:
        market = self.markets[spec.market]
        if spec.side == "sell":
            return market.base_id, spec.quantity
        return market.quote_id, buy_hold(market, spec.price or 0, spec.quantity)

    @transaction.atomic
    def write(self, specs: list[Spec], now: datetime | None = None) -> None:
        """One transaction, like a request each: sequence numbers, orders, commands, holds."""
        places = [spec for spec in specs if isinstance(spec, Place)]
        holds = {spec.client_order_id: self.hold(spec) for spec in places}
        counts: dict[str, int] = {}
        for spec in specs:
            counts[spec.market] = counts.get(spec.market, 0) + 1
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            # Sequence, orders, commands, then the holds, in order_place's order; one UPDATE per
            # market.
            next_seq: dict[str, int] = {}
            for symbol in sorted(counts):
                cursor.execute(_SEQUENCE, [counts[symbol], self.markets[symbol].pk])
                next_seq[symbol] = cursor.fetchone()[0] - counts[symbol] + 1
            now = now or timezone.now()
            sequences = []
            for spec in specs:
                sequences.append(next_seq[spec.market])
                next_seq[spec.market] += 1
            if places:
                rows = [
                    (spec, sequence)
                    for spec, sequence in zip(specs, sequences, strict=True)
                    if isinstance(spec, Place)
                ]
                cursor.execute(
                    _INSERT_ORDERS,
                    [
                        now,
                        now,
                        [spec.account for spec, _ in rows],
                        [self.markets[spec.market].pk for spec, _ in rows],
                        [spec.side for spec, _ in rows],
                        [spec.order_type for spec, _ in rows],
                        [spec.price for spec, _ in rows],
                        [spec.quantity for spec, _ in rows],
                        [spec.time_in_force for spec, _ in rows],
                        [spec.post_only for spec, _ in rows],
                        [spec.stp for spec, _ in rows],
                        [spec.client_order_id for spec, _ in rows],
                        [int(spec.client_order_id[1:]) for spec, _ in rows],
                        [now + timedelta(seconds=spec.lifetime) for spec, _ in rows],
                        [holds[spec.client_order_id][0] for spec, _ in rows],
                        [holds[spec.client_order_id][1] for spec, _ in rows],
                        [sequence for _, sequence in rows],
                    ],
                )
                for order_id, client_order_id in cursor.fetchall():
                    self.order_ids[client_order_id] = order_id
            kinds, accounts, order_ids, payloads = [], [], [], []
            for spec in specs:
                accounts.append(spec.account)
                if isinstance(spec, CancelAll):
                    kinds.append(OrderCommand.Kind.CANCEL_ALL.value)
                    order_ids.append(None)
                    payloads.append(json.dumps({"side": spec.side}))
                    continue
                kinds.append(
                    (
                        OrderCommand.Kind.PLACE
                        if isinstance(spec, Place)
                        else OrderCommand.Kind.CANCEL
                    ).value
                )
                order_id = self.order_ids[spec.client_order_id]
                order_ids.append(order_id)
                payloads.append(json.dumps({"order_id": order_id}))
            cursor.execute(
                _INSERT_COMMANDS,
                [
                    now,
                    [self.markets[spec.market].pk for spec in specs],
                    sequences,
                    kinds,
                    accounts,
                    order_ids,
                    payloads,
                ],
            )
            post_entries(
                [
                    NewEntry(
                        JournalEntry.Kind.HOLD,
                        f"order:{spec.account}:{spec.client_order_id}",
                        [
                            Line(spec.account, holds[spec.client_order_id][0], -amount),
                            Line(spec.account, holds[spec.client_order_id][0], amount, Bucket.HELD),
                        ],
                    )
                    for spec in places
                    if (amount := holds[spec.client_order_id][1])
                ]
            )
            for symbol in sorted(counts):
                cursor.execute(
                    "SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(self.markets[symbol].pk)]
                )


_SEQUENCE = (
    f"UPDATE {MarketSequence._meta.db_table} SET last_sequence = last_sequence + %s"
    " WHERE market_id = %s RETURNING last_sequence"
)

_INSERT_ORDERS = f"""
    INSERT INTO {Order._meta.db_table} (
        account_id, market_id, side, order_type, price, quantity, filled_quantity,
        remaining_quantity, time_in_force, post_only, stp, client_order_id, nonce, expires_at,
        signature, request_fingerprint, status, reason, hold_asset_id, hold_amount,
        hold_remaining, sequence, created_at, updated_at)
    SELECT o.account_id, o.market_id, o.side, o.order_type, o.price, o.quantity, 0, 0,
           o.time_in_force, o.post_only, o.stp, o.client_order_id, o.nonce, o.expires_at,
           '0x', 'stream', 'accepted', '', o.hold_asset_id, o.hold_amount, o.hold_amount,
           o.sequence, %s, %s
    FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::numeric[],
                %b::numeric[], %b::text[], %b::bool[], %b::text[], %b::text[], %b::numeric[],
                %b::timestamptz[], %b::bigint[], %b::numeric[], %b::bigint[])
      AS o(account_id, market_id, side, order_type, price, quantity, time_in_force, post_only,
           stp, client_order_id, nonce, expires_at, hold_asset_id, hold_amount, sequence)
    RETURNING id, client_order_id
"""

_INSERT_COMMANDS = f"""
    INSERT INTO {OrderCommand._meta.db_table}
        (market_id, sequence, kind, account_id, order_id, payload, accepted_at)
    SELECT c.market_id, c.sequence, c.kind, c.account_id, c.order_id, c.payload::jsonb, %s
    FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::bigint[], %b::bigint[], %b::text[])
      AS c(market_id, sequence, kind, account_id, order_id, payload)
"""
