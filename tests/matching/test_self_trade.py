"""Self-trade prevention: the taker's mode, or the market default, decides."""

from __future__ import annotations

from exchange.matching import (
    CancelReason,
    MarketSpec,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

from .support import book_with, types

STP = SelfTradePrevention


def _summary(events):
    out = []
    for e in events:
        if e.type == "fill":
            out.append(("fill", e.maker_order_id, e.quantity))
        elif e.type == "cancelled":
            out.append(("cancelled", e.order_id, e.quantity, e.remaining, e.reason.value))
    return out


def test_cancel_taker_stops_the_taker_and_leaves_the_maker():
    h = book_with(asks=[(101, [(2, "other"), (3, "me"), (4, "other")])])
    events = h.buy("t", 8, 101, account="me", stp=STP.CANCEL_TAKER)
    assert _summary(events) == [
        ("fill", "A1", 2),
        ("cancelled", "t", 6, 0, "self_trade_prevention"),
    ]
    assert h.queue(Side.SELL, 101) == [("A2", 3), ("A3", 4)]


def test_cancel_maker_cancels_the_maker_and_keeps_matching():
    h = book_with(asks=[(101, [(2, "other"), (3, "me"), (4, "other")])])
    events = h.buy("t", 8, 101, account="me", stp=STP.CANCEL_MAKER)
    assert _summary(events) == [
        ("fill", "A1", 2),
        ("cancelled", "A2", 3, 0, "self_trade_prevention"),
        ("fill", "A3", 4),
    ]
    assert h.depth() == {"bids": [[101, 2]], "asks": []}


def test_cancel_both_cancels_the_maker_and_the_takers_remainder():
    h = book_with(asks=[(101, [(2, "other"), (3, "me"), (4, "other")])])
    events = h.buy("t", 8, 101, account="me", stp=STP.CANCEL_BOTH)
    assert _summary(events) == [
        ("fill", "A1", 2),
        ("cancelled", "A2", 3, 0, "self_trade_prevention"),
        ("cancelled", "t", 6, 0, "self_trade_prevention"),
    ]
    assert h.queue(Side.SELL, 101) == [("A3", 4)]


def test_decrement_when_the_maker_is_larger_shrinks_it_in_place_and_ends_the_taker():
    h = book_with(asks=[(101, [(5, "me"), (4, "other")])])
    events = h.buy("t", 3, 101, account="me", stp=STP.DECREMENT_AND_CANCEL)
    assert _summary(events) == [
        ("cancelled", "A1", 3, 2, "self_trade_prevention"),
        ("cancelled", "t", 3, 0, "self_trade_prevention"),
    ]
    assert h.queue(Side.SELL, 101) == [("A1", 2), ("A2", 4)]  # A1 keeps its place
    assert h.engine.get_order("A1").quantity == 2  # restated, so filled stays 0
    assert h.engine.get_order("A1").filled == 0


def test_decrement_when_the_taker_is_larger_cancels_the_maker_and_goes_on():
    h = book_with(asks=[(101, [(2, "me"), (4, "other")])])
    events = h.buy("t", 5, 101, account="me", stp=STP.DECREMENT_AND_CANCEL)
    assert _summary(events) == [
        ("cancelled", "A1", 2, 0, "self_trade_prevention"),
        ("cancelled", "t", 2, 3, "self_trade_prevention"),
        ("fill", "A2", 3),
    ]
    assert h.queue(Side.SELL, 101) == [("A2", 1)]


def test_decrement_with_equal_sizes_cancels_both():
    h = book_with(asks=[(101, [(3, "me")])])
    events = h.buy("t", 3, 101, account="me", stp=STP.DECREMENT_AND_CANCEL)
    assert _summary(events) == [
        ("cancelled", "A1", 3, 0, "self_trade_prevention"),
        ("cancelled", "t", 3, 0, "self_trade_prevention"),
    ]
    assert h.depth() == {"bids": [], "asks": []}


def test_a_resting_taker_keeps_its_decremented_total():
    h = book_with(asks=[(101, [(2, "me")])])
    h.buy("t", 5, 101, account="me", stp=STP.DECREMENT_AND_CANCEL)
    order = h.engine.get_order("t")
    assert (order.quantity, order.remaining, order.filled) == (3, 3, 0)


def test_the_markets_default_applies_when_the_order_names_none():
    spec = MarketSpec(
        symbol="D", tick_size=1, lot_size=1, default_stp=SelfTradePrevention.CANCEL_TAKER
    )
    h = book_with(asks=[(101, [(3, "me")])], spec=spec)
    events = h.buy("t", 2, 101, account="me")
    assert events[0].stp is STP.CANCEL_TAKER
    assert _summary(events) == [("cancelled", "t", 2, 0, "self_trade_prevention")]


def test_orders_of_other_accounts_trade_normally():
    h = book_with(asks=[(101, [(3, "you")])])
    events = h.buy("t", 2, 101, account="me", stp=STP.CANCEL_BOTH)
    assert _summary(events) == [("fill", "A1", 2)]


def test_fok_counts_liquidity_behind_an_own_order_only_when_the_maker_would_be_cancelled():
    asks = [(101, [(2, "me"), (3, "other")])]
    h = book_with(asks=asks)
    events = h.buy("f", 3, 101, account="me", tif=TimeInForce.FOK, stp=STP.CANCEL_MAKER)
    assert _summary(events) == [
        ("cancelled", "A1", 2, 0, "self_trade_prevention"),
        ("fill", "A2", 3),
    ]
    for mode in (STP.CANCEL_TAKER, STP.CANCEL_BOTH, STP.DECREMENT_AND_CANCEL):
        h = book_with(asks=asks)
        events = h.buy("f", 3, 101, account="me", tif=TimeInForce.FOK, stp=mode)
        assert types(events) == ["rejected"]
        assert events[0].reason is RejectReason.FOK_NOT_FILLED
        assert h.queue(Side.SELL, 101) == [("A1", 2), ("A2", 3)]  # nothing was touched


def test_market_order_stopped_by_self_trade_prevention():
    h = book_with(bids=[(100, [(3, "me")])])
    events = h.sell("m", 2, account="me", order_type=OrderType.MARKET, stp=STP.CANCEL_TAKER)
    assert types(events) == ["accepted", "cancelled"]
    assert events[1].reason is CancelReason.SELF_TRADE
