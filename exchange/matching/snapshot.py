"""Full, serialisable snapshots of an engine, and restoring them.

A snapshot is a JSON-compatible dict: the market spec, the sequence counters and every open order
in queueing order (ascending ``priority``). Queueing order is all the state matching depends on:
re-inserting the orders in it rebuilds the same levels, FIFO queues, per-account order and expiry
schedule, so a restored engine emits byte-identical events for the same following commands.

Each order is ``{order_id, account, side, price, quantity, remaining, priority, expires_at, stp,
time_in_force}`` with ``price`` in ticks, ``quantity`` and ``remaining`` in lots. ``quantity`` is
the order's current total, filled included: the placed quantity, as changed by replaces and
lowered by self-trade decrements, so that ``quantity - remaining`` is what has filled (a
replace's new quantity is compared with it). ``priority`` is the ``seq`` that queued the order
(its place, or a replace that lost priority); ``time_in_force`` is ``gtc`` or ``post_only``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchange.matching.book import RestingOrder, resting_order
from exchange.matching.enums import SelfTradePrevention, Side, TimeInForce
from exchange.matching.market import MarketSpec

if TYPE_CHECKING:
    from exchange.matching.engine import MatchingEngine

SNAPSHOT_FORMAT = 1

_RESTING_TIFS = (TimeInForce.GTC, TimeInForce.POST_ONLY)


def take_snapshot(engine: MatchingEngine) -> dict[str, Any]:
    return {
        "format": SNAPSHOT_FORMAT,
        "spec": engine.spec.to_dict(),
        "last_seq": engine.last_seq,
        "event_seq": engine.event_seq,
        "orders": [
            {
                "order_id": order.order_id,
                "account": order.account,
                "side": order.side.value,
                "price": order.price,
                "quantity": order.quantity,
                "remaining": order.remaining,
                "priority": order.priority,
                "expires_at": order.expires_at,
                "stp": order.stp.value,
                "time_in_force": order.time_in_force.value,
            }
            for order in engine.book.iter_orders()
        ],
    }


def restore_snapshot(data: dict[str, Any]) -> MatchingEngine:
    """Rebuild an engine from :func:`take_snapshot` output; raises ValueError if it is corrupt."""
    from exchange.matching.engine import MatchingEngine

    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"unsupported snapshot format {data.get('format')!r}")
    engine = MatchingEngine(MarketSpec.from_dict(data["spec"]))
    last_seq = data["last_seq"]
    event_seq = data["event_seq"]
    if type(last_seq) is not int or type(event_seq) is not int or last_seq < 0 or event_seq < 0:
        raise ValueError("corrupt snapshot: bad sequence counters")
    book = engine.book
    previous_priority = 0
    for item in data["orders"]:
        order = resting_order(
            item["order_id"],
            item["account"],
            Side(item["side"]),
            item["price"],
            item["quantity"],
            item["remaining"],
            item["priority"],
            item["expires_at"],
            SelfTradePrevention(item["stp"]),
            TimeInForce(item["time_in_force"]),
        )
        _check_order(order, previous_priority, last_seq, engine.spec)
        if order.order_id in book.orders:
            raise ValueError(f"corrupt snapshot: duplicate order id {order.order_id!r}")
        previous_priority = order.priority
        book.insert(order)
    if book.best_bid >= book.best_ask:
        raise ValueError("corrupt snapshot: crossed book")
    engine.last_seq = last_seq
    engine.event_seq = event_seq
    return engine


def _check_order(order: RestingOrder, previous_priority: int, last_seq: int, spec: Any) -> None:
    def ok_int(value: object) -> bool:
        return type(value) is int and value > 0

    problems = []
    if type(order.order_id) not in (int, str) or type(order.account) not in (int, str):
        problems.append("id or account type")
    if not ok_int(order.price) or order.price > spec.max_price:
        problems.append("price")
    if (
        not ok_int(order.remaining)
        or not ok_int(order.quantity)
        or order.remaining > order.quantity
    ):
        problems.append("quantities")
    if (
        not ok_int(order.priority)
        or order.priority <= previous_priority
        or order.priority > last_seq
    ):
        problems.append("priority (must increase, and not exceed last_seq)")
    if order.expires_at is not None and not ok_int(order.expires_at):
        problems.append("expires_at")
    if order.time_in_force not in _RESTING_TIFS:
        problems.append("time_in_force")
    if problems:
        raise ValueError(f"corrupt snapshot: order {order.order_id!r}: {', '.join(problems)}")
