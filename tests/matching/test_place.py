"""Placing orders: resting, matching, price-time priority, market orders, time in force."""

from __future__ import annotations

import pytest

from exchange.matching import (
    CancelReason,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)

from .support import Harness, book_with, types


def test_limit_order_on_an_empty_book_rests_and_reports_its_level():
    h = Harness()
    events = h.buy("b", 5, 100)
    assert types(events) == ["accepted", "level"]
    accepted, level = events
    assert (accepted.order_id, accepted.side, accepted.price, accepted.quantity) == (
        "b",
        Side.BUY,
        100,
        5,
    )
    assert accepted.time_in_force is TimeInForce.GTC
    assert (level.side, level.price, level.quantity) == (Side.BUY, 100, 5)
    assert h.engine.best_bid() == (100, 5)
    assert h.engine.best_ask() is None


def test_orders_at_one_price_aggregate_in_level_events_and_depth():
    h = book_with(bids=[(100, [5, 3]), (99, [2])], asks=[(101, [4]), (103, [1, 1])])
    assert h.depth() == {"bids": [[100, 8], [99, 2]], "asks": [[101, 4], [103, 2]]}
    assert h.engine.depth(1).to_dict() == {"bids": [[100, 8]], "asks": [[101, 4]]}
    events = h.sell("s", 6, 102)
    assert events[-1].to_dict()["quantity"] == 6


def test_non_crossing_orders_do_not_trade():
    h = book_with(bids=[(100, [5])], asks=[(101, [5])])
    assert types(h.buy("b", 1, 100)) == ["accepted", "level"]
    assert types(h.sell("s", 1, 101)) == ["accepted", "level"]
    assert h.depth() == {"bids": [[100, 6]], "asks": [[101, 6]]}


def test_crossing_limit_fills_at_the_makers_price_and_rests_the_rest():
    h = book_with(asks=[(101, [3])])
    events = h.buy("b", 5, 105, account="taker")
    assert types(events) == ["accepted", "fill", "level", "level"]
    fill = events[1]
    assert fill.price == 101  # the maker's price, not the taker's limit
    assert (fill.quantity, fill.maker_order_id, fill.taker_order_id) == (3, "A1", "b")
    assert (fill.maker_account, fill.taker_account) == ("mA1", "taker")
    assert (fill.maker_remaining, fill.taker_remaining) == (0, 2)
    assert fill.taker_side is Side.BUY
    assert fill.trade_id == f"TEST-{fill.seq}-1"
    levels = {(e.side, e.price): e.quantity for e in events[2:]}
    assert levels == {(Side.SELL, 101): 0, (Side.BUY, 105): 2}
    assert h.depth() == {"bids": [[105, 2]], "asks": []}
    assert h.engine.get_order("b").remaining == 2
    assert h.engine.get_order("b").filled == 3


def test_a_sweep_takes_levels_best_price_first_and_orders_in_time_priority():
    h = book_with(asks=[(102, [2]), (101, [1, 4]), (103, [9])])
    events = h.buy("b", 6, 102)
    fills = [(e.maker_order_id, e.price, e.quantity) for e in events if e.type == "fill"]
    # 101 before 102; within 101, A1 was placed before A2.
    assert fills == [("A2", 101, 1), ("A3", 101, 4), ("A1", 102, 1)]
    assert [e.trade_id.rsplit("-", 1)[1] for e in events if e.type == "fill"] == ["1", "2", "3"]
    assert h.depth() == {"bids": [], "asks": [[102, 1], [103, 9]]}
    levels = [(e.price, e.quantity) for e in events if e.type == "level"]
    assert levels == [(101, 0), (102, 1)]  # one event per level, in the order touched


def test_partial_fill_of_a_maker_keeps_its_place():
    h = book_with(bids=[(100, [5, 5])])
    h.sell("s1", 2, 100)
    assert h.queue(Side.BUY, 100) == [("B1", 3), ("B2", 5)]
    h.sell("s2", 4, 100)
    assert h.queue(Side.BUY, 100) == [("B2", 4)]


def test_market_order_takes_at_any_price_and_cancels_the_remainder():
    h = book_with(asks=[(101, [2]), (150, [1])])
    events = h.buy("m", 5, order_type=OrderType.MARKET)
    assert types(events) == ["accepted", "fill", "fill", "cancelled", "level", "level"]
    assert events[0].time_in_force is TimeInForce.IOC
    assert events[0].price is None
    assert [e.price for e in events if e.type == "fill"] == [101, 150]
    cancelled = events[3]
    assert (cancelled.reason, cancelled.quantity, cancelled.remaining) == (
        CancelReason.MARKET_REMAINDER,
        2,
        0,
    )
    assert h.engine.get_order("m") is None


def test_market_order_on_an_empty_side_is_accepted_then_cancelled():
    h = book_with(bids=[(100, [5])])
    events = h.buy("m", 3, order_type=OrderType.MARKET)
    assert types(events) == ["accepted", "cancelled"]
    assert events[1].reason is CancelReason.MARKET_REMAINDER
    assert events[1].quantity == 3


def test_market_order_protection_price_stops_the_sweep():
    h = book_with(bids=[(100, [2]), (98, [5])])
    events = h.sell("m", 5, 99, order_type=OrderType.MARKET)
    assert [(e.price, e.quantity) for e in events if e.type == "fill"] == [(100, 2)]
    assert events[-2].reason is CancelReason.MARKET_REMAINDER
    assert h.depth()["bids"] == [[98, 5]]


def test_market_fok_fills_fully_or_is_rejected():
    h = book_with(asks=[(101, [2]), (102, [2])])
    rejected = h.buy("m1", 5, order_type=OrderType.MARKET, tif=TimeInForce.FOK)
    assert types(rejected) == ["rejected"]
    assert rejected[0].reason is RejectReason.FOK_NOT_FILLED
    filled = h.buy("m2", 4, order_type=OrderType.MARKET, tif=TimeInForce.FOK)
    assert sum(e.quantity for e in filled if e.type == "fill") == 4


def test_ioc_takes_what_it_can_and_cancels_the_rest():
    h = book_with(asks=[(101, [2]), (102, [5])])
    events = h.buy("i", 4, 101, tif=TimeInForce.IOC)
    assert types(events) == ["accepted", "fill", "cancelled", "level"]
    assert (events[2].reason, events[2].quantity) == (CancelReason.IOC_REMAINDER, 2)
    assert h.depth() == {"bids": [], "asks": [[102, 5]]}


def test_ioc_that_does_not_cross_is_cancelled_whole():
    h = book_with(asks=[(101, [2])])
    events = h.buy("i", 4, 100, tif=TimeInForce.IOC)
    assert types(events) == ["accepted", "cancelled"]
    assert (events[1].reason, events[1].quantity, events[1].price) == (
        CancelReason.IOC_REMAINDER,
        4,
        100,
    )
    assert h.depth()["bids"] == []


def test_fok_fills_completely_across_levels():
    h = book_with(asks=[(101, [2]), (102, [3])])
    events = h.buy("f", 5, 102, tif=TimeInForce.FOK)
    assert types(events) == ["accepted", "fill", "fill", "level", "level"]
    assert h.depth() == {"bids": [], "asks": []}


@pytest.mark.parametrize(("quantity", "price"), [(6, 102), (5, 101), (1, 100)])
def test_fok_that_cannot_fill_is_rejected_and_changes_nothing(quantity, price):
    h = book_with(asks=[(101, [2]), (102, [3])])
    before = h.engine.snapshot()
    events = h.buy("f", quantity, price, tif=TimeInForce.FOK)
    assert types(events) == ["rejected"]
    assert events[0].reason is RejectReason.FOK_NOT_FILLED
    after = h.engine.snapshot()
    assert after["orders"] == before["orders"]


def test_post_only_rests_when_it_would_not_take():
    h = book_with(asks=[(101, [2])])
    events = h.buy("p", 3, 100, tif=TimeInForce.POST_ONLY)
    assert types(events) == ["accepted", "level"]
    assert h.engine.get_order("p").time_in_force is TimeInForce.POST_ONLY


def test_post_only_that_would_take_is_rejected_not_repriced():
    h = book_with(asks=[(101, [2])])
    events = h.buy("p", 3, 101, tif=TimeInForce.POST_ONLY)
    assert types(events) == ["rejected"]
    assert events[0].reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert h.engine.get_order("p") is None
    assert h.depth() == {"bids": [], "asks": [[101, 2]]}


def test_post_only_is_rejected_even_if_only_its_own_orders_would_be_hit():
    h = book_with(asks=[(101, [(2, "me")])])
    events = h.buy("p", 3, 101, tif=TimeInForce.POST_ONLY, account="me")
    assert events[0].reason is RejectReason.POST_ONLY_WOULD_TAKE


def test_duplicate_open_order_id_is_rejected():
    h = book_with(bids=[(100, [5])])
    events = h.sell("B1", 1, 120)
    assert types(events) == ["rejected"]
    assert events[0].reason is RejectReason.DUPLICATE_ORDER_ID
    assert h.depth()["asks"] == []


def test_an_id_may_be_reused_once_its_order_is_gone():
    h = book_with(bids=[(100, [5])])
    h.sell("s", 5, 100)
    assert types(h.buy("B1", 1, 90)) == ["accepted", "level"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"price": 0}, RejectReason.INVALID_PRICE),
        ({"price": -5}, RejectReason.INVALID_PRICE),
        ({"price": 100.0}, RejectReason.INVALID_PRICE),
        ({"price": "100"}, RejectReason.INVALID_PRICE),
        ({"price": True}, RejectReason.INVALID_PRICE),
        ({"price": None}, RejectReason.INVALID_PRICE),
        ({"quantity": 0}, RejectReason.INVALID_QUANTITY),
        ({"quantity": 2.5}, RejectReason.INVALID_QUANTITY),
        ({"quantity": -1}, RejectReason.INVALID_QUANTITY),
        ({"quantity": 1_001}, RejectReason.QUANTITY_ABOVE_MAX),
        ({"side": "buy"}, RejectReason.INVALID_SIDE),
        ({"order_type": "limit"}, RejectReason.INVALID_ORDER_TYPE),
        ({"tif": "gtc"}, RejectReason.INVALID_TIME_IN_FORCE),
        ({"stp": "cancel_maker"}, RejectReason.INVALID_SELF_TRADE_PREVENTION),
        ({"expires_at": 0}, RejectReason.INVALID_EXPIRY),
        ({"expires_at": 10.5}, RejectReason.INVALID_EXPIRY),
        ({"account": None}, RejectReason.INVALID_ACCOUNT),
        ({"account": 1.0}, RejectReason.INVALID_ACCOUNT),
    ],
)
def test_invalid_fields_are_rejected_with_a_stable_code(fields, reason):
    h = book_with(asks=[(101, [2])])
    kwargs = {"price": 100, "quantity": 3, "side": Side.BUY}
    kwargs.update(fields)
    events = h.place("x", kwargs.pop("side"), kwargs.pop("quantity"), kwargs.pop("price"), **kwargs)
    assert types(events) == ["rejected"]
    assert events[0].reason is reason
    assert events[0].command == "place"
    assert h.depth() == {"bids": [], "asks": [[101, 2]]}


def test_invalid_order_id_is_rejected_and_not_echoed():
    h = Harness()
    events = h.buy(1.5, 1, 100)
    assert events[0].reason is RejectReason.INVALID_ORDER_ID
    assert events[0].order_id is None


def test_price_above_the_markets_maximum_is_rejected():
    from exchange.matching import MarketSpec

    h = Harness(MarketSpec(symbol="M", tick_size=1, lot_size=1, max_price=1_000))
    assert h.buy("b", 1, 1_001)[0].reason is RejectReason.INVALID_PRICE
    assert types(h.buy("c", 1, 1_000)) == ["accepted", "level"]


def test_quantity_below_the_markets_minimum_is_rejected():
    from exchange.matching import MarketSpec

    h = Harness(MarketSpec(symbol="M", tick_size=1, lot_size=1, min_quantity=5))
    assert h.buy("b", 4, 100)[0].reason is RejectReason.QUANTITY_BELOW_MIN
    assert types(h.buy("c", 5, 100)) == ["accepted", "level"]


def test_market_order_with_gtc_or_post_only_is_rejected():
    h = Harness()
    for tif in (TimeInForce.GTC, TimeInForce.POST_ONLY):
        events = h.buy(f"m-{tif}", 1, order_type=OrderType.MARKET, tif=tif)
        assert events[0].reason is RejectReason.INVALID_TIME_IN_FORCE
