"""Cancel, cancel-all, replace and expiry."""

from __future__ import annotations

from exchange.matching import CancelReason, RejectReason, Side, TimeInForce

from .support import Harness, book_with, types


def test_cancel_removes_the_order_and_reports_the_level():
    h = book_with(bids=[(100, [5, 3])])
    events = h.cancel("B1", account="mB1")
    assert types(events) == ["cancelled", "level"]
    cancelled, level = events
    assert (cancelled.order_id, cancelled.reason, cancelled.quantity, cancelled.remaining) == (
        "B1",
        CancelReason.USER,
        5,
        0,
    )
    assert (cancelled.side, cancelled.price) == (Side.BUY, 100)
    assert (level.price, level.quantity) == (100, 3)
    assert h.queue(Side.BUY, 100) == [("B2", 3)]


def test_cancelling_the_last_order_of_the_best_level_moves_the_best_price():
    h = book_with(asks=[(101, [1]), (102, [2])])
    events = h.cancel("A1", account="mA1")
    assert events[-1].quantity == 0
    assert h.engine.best_ask() == (102, 2)
    # The cancelled order's queue entry must never match.
    fills = [e for e in h.buy("b", 2, 102) if e.type == "fill"]
    assert [f.maker_order_id for f in fills] == ["A2"]


def test_cancel_in_the_middle_of_a_queue_keeps_the_others_in_order():
    h = book_with(asks=[(101, [1, 1, 1])])
    h.cancel("A2", account="mA2")
    fills = [e.maker_order_id for e in h.buy("b", 2, 101) if e.type == "fill"]
    assert fills == ["A1", "A3"]


def test_cancel_of_an_unknown_filled_or_foreign_order_is_rejected():
    h = book_with(bids=[(100, [5])])
    assert h.cancel("nope")[0].reason is RejectReason.UNKNOWN_ORDER
    assert h.cancel("B1", account="not the owner")[0].reason is RejectReason.UNKNOWN_ORDER
    h.sell("s", 5, 100)
    rejected = h.cancel("B1", account="mB1")
    assert types(rejected) == ["rejected"]
    assert (rejected[0].reason, rejected[0].command) == (RejectReason.UNKNOWN_ORDER, "cancel")


def test_cancels_anywhere_in_a_queue_unlink_the_order():
    h = Harness()
    for i in range(6):
        h.buy(i, 1, 100)
    for i in (0, 3, 5):  # head, middle, tail
        h.cancel(i)
    level = h.engine.book.bids[100]
    assert [o.order_id for o in level] == [1, 2, 4]
    assert (level.head.prev, level.tail.next) == (None, None)
    assert level.total == 3
    fills = [e.maker_order_id for e in h.sell("s", 3, 100, account="other") if e.type == "fill"]
    assert fills == [1, 2, 4]
    assert 100 not in h.engine.book.bids


def test_cancel_all_cancels_every_order_of_the_account_in_time_order():
    h = book_with(
        bids=[(100, [(1, "me"), (2, "you")]), (99, [(3, "me")])],
        asks=[(101, [(4, "me")])],
    )
    events = h.cancel_all("me")
    cancelled = [(e.order_id, e.quantity) for e in events if e.type == "cancelled"]
    assert cancelled == [("B1", 1), ("B3", 3), ("A1", 4)]
    assert all(e.reason is CancelReason.USER for e in events if e.type == "cancelled")
    assert {(e.side, e.price): e.quantity for e in events if e.type == "level"} == {
        (Side.BUY, 100): 2,
        (Side.BUY, 99): 0,
        (Side.SELL, 101): 0,
    }
    assert h.engine.open_orders("me") == []
    assert [o.order_id for o in h.engine.open_orders("you")] == ["B2"]


def test_cancel_all_for_one_side():
    h = book_with(bids=[(100, [(1, "me")])], asks=[(101, [(4, "me")])])
    events = h.cancel_all("me", side=Side.SELL)
    assert [e.order_id for e in events if e.type == "cancelled"] == ["A1"]
    assert [o.order_id for o in h.engine.open_orders("me")] == ["B1"]


def test_cancel_all_with_nothing_open_emits_nothing_and_bad_input_is_rejected():
    h = book_with(bids=[(100, [5])])
    assert h.cancel_all("nobody") == []
    assert h.cancel_all(None)[0].reason is RejectReason.INVALID_ACCOUNT
    rejected = h.cancel_all("mB1", side="buy")  # a string, not a Side
    assert (rejected[0].reason, rejected[0].command) == (RejectReason.INVALID_SIDE, "cancel_all")


def test_amending_quantity_down_keeps_time_priority():
    h = book_with(bids=[(100, [5, 5])])
    events = h.replace("B1", quantity=2, account="mB1")
    assert types(events) == ["replaced", "level"]
    replaced = events[0]
    assert replaced.priority_kept is True
    assert (replaced.old_quantity, replaced.quantity, replaced.remaining) == (5, 2, 2)
    assert events[1].quantity == 7
    assert h.queue(Side.BUY, 100) == [("B1", 2), ("B2", 5)]


def test_replace_quantity_is_the_new_total_including_fills():
    h = book_with(bids=[(100, [10])])
    h.sell("s", 4, 100)  # B1: 4 filled, 6 open
    events = h.replace("B1", quantity=7, account="mB1")
    assert (events[0].quantity, events[0].remaining) == (7, 3)
    assert h.engine.get_order("B1").filled == 4
    rejected = h.replace("B1", quantity=4, account="mB1")
    assert rejected[0].reason is RejectReason.QUANTITY_NOT_ABOVE_FILLED


def test_amending_quantity_up_loses_time_priority():
    h = book_with(bids=[(100, [5, 5])])
    events = h.replace("B1", quantity=6, account="mB1")
    assert events[0].priority_kept is False
    assert h.queue(Side.BUY, 100) == [("B2", 5), ("B1", 6)]
    assert [e.quantity for e in events if e.type == "level"] == [11]


def test_changing_price_loses_priority_and_moves_the_level():
    h = book_with(bids=[(100, [5]), (99, [1])])
    events = h.replace("B1", price=99, account="mB1")
    assert types(events) == ["replaced", "level", "level"]
    assert (events[0].old_price, events[0].price, events[0].priority_kept) == (100, 99, False)
    assert h.queue(Side.BUY, 99) == [("B2", 1), ("B1", 5)]
    assert h.depth()["bids"] == [[99, 6]]


def test_a_reprice_through_the_spread_trades_as_a_taker():
    h = book_with(bids=[(100, [5])], asks=[(102, [2])])
    events = h.replace("B1", price=102, account="mB1")
    assert types(events) == ["replaced", "fill", "level", "level", "level"]
    fill = events[1]
    assert (fill.taker_order_id, fill.price, fill.quantity, fill.taker_remaining) == (
        "B1",
        102,
        2,
        3,
    )
    assert h.depth() == {"bids": [[102, 3]], "asks": []}


def test_post_only_reprice_that_would_take_is_rejected_and_keeps_the_order():
    h = book_with(asks=[(102, [2])])
    h.buy("p", 5, 100, tif=TimeInForce.POST_ONLY)
    rejected = h.replace("p", price=102)
    assert rejected[0].reason is RejectReason.POST_ONLY_WOULD_TAKE
    assert h.engine.get_order("p").price == 100


def test_replace_rejections():
    h = book_with(bids=[(100, [5])])
    assert h.replace("B1", account="mB1")[0].reason is RejectReason.INVALID_REPLACE
    assert h.replace("B1", price=0, account="mB1")[0].reason is RejectReason.INVALID_PRICE
    assert h.replace("B1", quantity=1.0, account="mB1")[0].reason is RejectReason.INVALID_QUANTITY
    assert h.replace("B1", quantity=5_000, account="mB1")[0].reason is (
        RejectReason.QUANTITY_ABOVE_MAX
    )
    assert h.replace("B1", quantity=2, account="other")[0].reason is RejectReason.UNKNOWN_ORDER
    assert h.replace("zz", quantity=2)[0].reason is RejectReason.UNKNOWN_ORDER
    assert h.depth()["bids"] == [[100, 5]]


def test_replace_to_the_same_values_is_a_no_op_that_keeps_priority():
    h = book_with(bids=[(100, [5, 5])])
    events = h.replace("B1", price=100, quantity=5, account="mB1")
    assert types(events) == ["replaced"]
    assert events[0].priority_kept is True
    assert h.queue(Side.BUY, 100) == [("B1", 5), ("B2", 5)]


def test_order_expiring_at_arrival_is_rejected():
    h = Harness()
    events = h.buy("b", 1, 100, expires_at=h.now + 1, advance=1)
    assert events[0].reason is RejectReason.EXPIRED


def test_orders_expire_when_a_later_command_reaches_their_expiry():
    h = Harness()
    h.buy("early", 1, 100, expires_at=h.now + 5)
    h.buy("late", 2, 100, expires_at=h.now + 10)
    h.buy("never", 3, 99)
    assert h.engine.get_order("early") is not None
    events = h.sell("s", 1, 200, advance=5)  # timestamp == early's expiry
    assert types(events) == ["cancelled", "level", "accepted", "level"]
    assert (events[0].order_id, events[0].reason, events[0].seq) == (
        "early",
        CancelReason.EXPIRED,
        h.seq,
    )
    assert events[1].quantity == 2
    events = h.expire(advance=100)
    assert [(e.order_id, e.reason) for e in events if e.type == "cancelled"] == [
        ("late", CancelReason.EXPIRED)
    ]
    assert h.depth()["bids"] == [[99, 3]]


def test_expired_orders_never_trade():
    h = Harness()
    h.sell("a", 1, 100, expires_at=h.now + 2)
    events = h.buy("b", 1, 100, advance=5)
    assert types(events) == ["cancelled", "level", "accepted", "level"]
    assert h.depth() == {"bids": [[100, 1]], "asks": []}


def test_expiry_survives_a_replace_and_a_cancelled_order_does_not_expire_twice():
    h = Harness()
    h.buy("b", 5, 100, expires_at=h.now + 10)
    h.replace("b", price=101)
    h.buy("c", 5, 100, expires_at=h.now + 10)
    h.cancel("c")
    events = h.expire(advance=20)
    assert [e.order_id for e in events if e.type == "cancelled"] == ["b"]


def test_expiry_follows_expires_at_then_time_priority():
    h = Harness()
    h.buy("second", 1, 100, expires_at=h.now + 10)
    h.buy("first", 1, 99, expires_at=h.now + 5)
    h.buy("third", 1, 98, expires_at=h.now + 8)
    events = h.expire(advance=50)
    assert [e.order_id for e in events if e.type == "cancelled"] == ["first", "second", "third"]


def test_next_expiry_tells_the_worker_when_to_send_an_expire_command():
    h = Harness()
    assert h.engine.next_expiry() is None
    h.buy("a", 1, 100, expires_at=h.now + 50)
    h.buy("b", 1, 99, expires_at=h.now + 20)
    h.buy("c", 1, 98)
    first = h.engine.open_orders()[1].expires_at
    assert h.engine.next_expiry() == first
    h.cancel("b")  # its schedule entry goes stale
    assert h.engine.next_expiry() == h.engine.get_order("a").expires_at
    h.replace("a", price=101)  # re-queued: same expiry, new schedule entry
    assert h.engine.next_expiry() == h.engine.get_order("a").expires_at
    h.expire(advance=100)
    assert h.engine.next_expiry() is None
