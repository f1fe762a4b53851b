"""The reference for "exactly once": the command log replayed by a fresh in-memory engine.

Whatever crashes the worker went through, the database must hold what one clean pass over the
log gives: the same fills, the same final book, the same order states, cursors at the end of
the log, and every hold either still backing an open order or released / consumed once.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict

from django.core.management import call_command

from exchange.ledger.models import Balance, JournalEntry
from exchange.markets.models import Market
from exchange.matching import Fill, MatchingEngine, OrderRejected
from exchange.matching_worker.book_state import rebuild_engine, to_engine_command
from exchange.trading.models import MarketCursor, MarketSequence, Order, OrderCommand, Trade


def replay(market: Market) -> tuple[MatchingEngine, list[Fill], set[int]]:
    """(engine after the whole log, its fills, ids of orders whose place was rejected)."""
    engine = MatchingEngine(market.engine_spec())
    orders = Order.objects.filter(market=market).in_bulk()
    fills: list[Fill] = []
    rejected: set[int] = set()
    for command in OrderCommand.objects.filter(market=market).order_by("sequence").iterator():
        events = engine.submit(to_engine_command(command, orders.get(command.order_id), market))
        for event in events:
            if isinstance(event, Fill):
                fills.append(event)
            elif isinstance(event, OrderRejected) and event.command == "place":
                rejected.add(event.order_id)
    return engine, fills, rejected


def assert_matches_clean_replay(markets: list[Market]) -> dict[str, int]:
    """Assert the database is what one clean pass over the log gives; returns trades per
    market."""
    trades_per_market = {}
    for market in markets:
        market = Market.objects.select_related("base", "quote").get(pk=market.pk)
        engine, fills, rejected = replay(market)
        cursor = MarketCursor.objects.get(market=market)
        last = MarketSequence.objects.get(market=market).last_sequence
        # Every command applied, none twice: the cursor is at the end of the log and counts
        # exactly the events one pass emits.
        found = (cursor.applied_sequence, cursor.event_sequence)
        assert found == (last, engine.event_seq), (market.symbol, found, last, engine.event_seq)
        assert engine.last_seq == last

        tick, lot = market.tick_size, market.lot_size
        expected = [
            (f.trade_id, f.price * tick, f.quantity * lot, f.maker_order_id, f.taker_order_id,
             f.taker_side.value)
            for f in fills
        ]  # fmt: skip
        stored = list(
            Trade.objects.filter(market=market)
            .order_by("sequence", "id")
            .values_list(
                "trade_id", "price", "quantity", "maker_order", "taker_order", "taker_side"
            )
        )
        assert len({row[0] for row in stored}) == len(stored), "a trade id twice"
        assert sorted(stored) == sorted(expected), market.symbol
        trades_per_market[market.symbol] = len(stored)

        # The book the worker would rebuild now is the clean engine's, order for order.
        assert rebuild_engine(market).snapshot() == engine.snapshot(), market.symbol

        filled: Counter[int] = Counter()
        for f in fills:
            filled[f.maker_order_id] += f.quantity * lot
            filled[f.taker_order_id] += f.quantity * lot
        open_orders = {o.order_id: o for o in engine.open_orders()}
        for order in Order.objects.filter(market=market):
            resting = open_orders.get(order.pk)
            assert order.filled_quantity == filled[order.pk], order.pk
            assert order.remaining_quantity == (resting.remaining * lot if resting else 0)
            if order.pk in rejected:
                status = Order.Status.REJECTED
            elif resting is not None:
                status = Order.Status.PARTIALLY_FILLED if filled[order.pk] else Order.Status.OPEN
            elif order.filled_quantity == order.quantity:
                status = Order.Status.FILLED
            else:
                status = Order.Status.CANCELLED
            assert order.status == status, (order.pk, order.status, status)
            if not order.is_open:
                assert order.hold_remaining == 0, order.pk
    assert_holds_consistent()
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.TRADE).count() == sum(
        trades_per_market.values()
    )
    call_command("ledger_check", stdout=io.StringIO())
    return trades_per_market


def assert_holds_consistent() -> None:
    """Each account's held balance is exactly what its open orders still hold: every hold was
    released or consumed once, never twice, never forgotten."""
    held: dict[tuple[int, int], int] = defaultdict(int)
    for account_id, asset_id, remaining in Order.objects.filter(
        status__in=[Order.Status.ACCEPTED, Order.Status.OPEN, Order.Status.PARTIALLY_FILLED]
    ).values_list("account_id", "hold_asset_id", "hold_remaining"):
        held[(account_id, asset_id)] += remaining
    balances = {
        (row.account_id, row.asset_id): row.held
        for row in Balance.objects.filter(account__kind="trader")
    }
    for key in set(held) | set(balances):
        assert balances.get(key, 0) == held.get(key, 0), key
