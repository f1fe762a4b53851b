"""Engine <-> database: command translation, the rows the worker reads, rebuilding a book."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from exchange.markets.models import Market
from exchange.matching import (
    CancelAll,
    CancelOrder,
    ExpireOrders,
    MatchingEngine,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.matching.snapshot import SNAPSHOT_FORMAT
from exchange.trading.models import MarketCursor, Order, OrderCommand

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def millis(moment: datetime) -> int:
    """Engine timestamps are integer milliseconds (commands and expiries alike), computed
    exactly: the same datetime always gives the same engine input."""
    return (moment - _EPOCH) // _MILLISECOND


def engine_tif(order: Any) -> TimeInForce:
    return TimeInForce.POST_ONLY if order.post_only else TimeInForce(order.time_in_force)


class OrderRow:
    """The columns of an Order the worker reads and writes, without a model instance's cost.

    Amounts are ints; ``expires_ms`` is the engine's expiry (milliseconds since the epoch).
    """

    __slots__ = (
        "account_id",
        "client_order_id",
        "expires_ms",
        "filled_quantity",
        "hold_added",
        "hold_asset_id",
        "hold_remaining",
        "order_type",
        "pk",
        "post_only",
        "price",
        "quantity",
        "reason",
        "remaining_quantity",
        "sequence",
        "side",
        "status",
        "stp",
        "time_in_force",
    )

    # The SELECT list that fills one, in __init__'s order (alias "o"). Timestamps come as exact
    # integers: parsing datetimes cost more than anything else in reading a batch.
    COLUMNS = (
        "o.id, o.account_id, o.side, o.order_type, o.price, o.quantity, o.time_in_force,"
        " o.post_only, o.stp, floor(extract(epoch FROM o.expires_at) * 1000)::bigint,"
        " o.client_order_id, o.hold_asset_id, o.hold_remaining, o.filled_quantity,"
        " o.remaining_quantity, o.status, o.reason, o.sequence"
    )

    def __init__(
        self,
        pk: int,
        account_id: int,
        side: str,
        order_type: str,
        price: Any,
        quantity: Any,
        time_in_force: str,
        post_only: bool,
        stp: str,
        expires_ms: int | None,
        client_order_id: str,
        hold_asset_id: int,
        hold_remaining: Any,
        filled_quantity: Any,
        remaining_quantity: Any,
        status: str,
        reason: str,
        sequence: int,
    ) -> None:
        # NUMERIC columns arrive as Decimal: amounts are ints everywhere else.
        self.pk = pk
        self.account_id = account_id
        self.side = side
        self.order_type = order_type
        self.price = None if price is None else int(price)
        self.quantity = int(quantity)
        self.time_in_force = time_in_force
        self.post_only = post_only
        self.stp = stp
        self.expires_ms = expires_ms
        self.client_order_id = client_order_id
        self.hold_asset_id = hold_asset_id
        self.hold_remaining = int(hold_remaining)
        self.filled_quantity = int(filled_quantity)
        self.remaining_quantity = int(remaining_quantity)
        self.status = status
        self.reason = reason
        self.sequence = sequence
        # Held by amends applied since the last write (the worker adds it to hold_amount).
        self.hold_added = 0


class CommandRow:
    """One command log entry as the worker reads it; ``accepted_us`` is ``accepted_at`` in
    microseconds since the epoch, ``order_id`` a cancel's target, ``side`` a cancel-all's,
    ``payload`` a replace's whole payload (None for other kinds: they need none of it)."""

    __slots__ = ("accepted_us", "account_id", "kind", "order_id", "payload", "sequence", "side")

    # The SELECT list that fills one, in __init__'s order (alias "c").
    COLUMNS = (
        "c.sequence, c.kind, c.account_id,"
        " COALESCE((c.payload ->> 'order_id')::bigint, c.order_id), c.payload ->> 'side',"
        " (extract(epoch FROM c.accepted_at) * 1000000)::bigint,"
        " CASE WHEN c.kind = 'replace' THEN c.payload END"
    )
    WIDTH = 7

    def __init__(
        self,
        sequence: int,
        kind: str,
        account_id: int | None,
        order_id: int | None,
        side: str | None,
        accepted_us: int,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.sequence = sequence
        self.kind = kind
        self.account_id = account_id
        self.order_id = order_id
        self.side = side
        self.accepted_us = accepted_us
        # The worker's cursor may hand jsonb over as text.
        self.payload = json.loads(payload) if isinstance(payload, str) else payload


_SIDES = {side.value: side for side in Side}
_TYPES = {order_type.value: order_type for order_type in OrderType}
_TIFS = {tif.value: tif for tif in TimeInForce}
_STPS = {stp.value: stp for stp in SelfTradePrevention}


def engine_command(command: CommandRow, order: OrderRow | None, market: Market):  # type: ignore[no-untyped-def]
    """``to_engine_command`` for the rows the worker reads (same commands, built faster)."""
    seq, timestamp = command.sequence, command.accepted_us // 1000
    kind = command.kind
    if kind == "place":
        assert order is not None
        return PlaceOrder(
            seq=seq,
            timestamp=timestamp,
            order_id=order.pk,
            account=order.account_id,
            side=_SIDES[order.side],
            quantity=order.quantity // market.lot_size,
            price=None if order.price is None else order.price // market.tick_size,
            order_type=_TYPES[order.order_type],
            time_in_force=TimeInForce.POST_ONLY if order.post_only else _TIFS[order.time_in_force],
            expires_at=order.expires_ms,
            stp=_STPS[order.stp],
        )
    if kind == "cancel":
        return CancelOrder(
            seq=seq, timestamp=timestamp, order_id=command.order_id, account=command.account_id
        )
    if kind == "cancel_all":
        side = command.side
        return CancelAll(
            seq=seq,
            timestamp=timestamp,
            account=command.account_id,
            side=_SIDES[side] if side else None,
        )
    if kind == "expire":
        return ExpireOrders(seq=seq, timestamp=timestamp)
    if kind == "replace":
        assert command.payload is not None
        return replace_command(seq, timestamp, command.account_id, command.payload, market)
    raise ValueError(f"unknown command kind {kind!r}")


def replace_command(
    seq: int, timestamp: int, account_id: int | None, payload: dict[str, Any], market: Market
) -> ReplaceOrder:
    """A replace's payload (base-unit strings, None: unchanged) as ticks and lots."""
    price, quantity = payload.get("price"), payload.get("quantity")
    return ReplaceOrder(
        seq=seq,
        timestamp=timestamp,
        order_id=int(payload["order_id"]),
        account=account_id,
        price=None if price is None else int(price) // market.tick_size,
        quantity=None if quantity is None else int(quantity) // market.lot_size,
    )


def to_engine_command(command: OrderCommand, order: Order | None, market: Market):  # type: ignore[no-untyped-def]
    """The engine command for a log entry, from the models (replays, tests). Amounts become
    ticks and lots exactly: the API accepted only multiples of the tick and lot sizes."""
    seq, timestamp = command.sequence, millis(command.accepted_at)
    if command.kind == OrderCommand.Kind.PLACE:
        assert order is not None
        # The placed amounts are in the command (an amend changes the order row's since);
        # commands logged before that carry only the order id.
        price = command.payload.get("price", order.price)
        quantity = int(command.payload.get("quantity", order.quantity))
        return PlaceOrder(
            seq=seq,
            timestamp=timestamp,
            order_id=order.pk,
            account=order.account_id,
            side=Side(order.side),
            quantity=quantity // market.lot_size,
            price=None if price is None else int(price) // market.tick_size,
            order_type=OrderType(order.order_type),
            time_in_force=engine_tif(order),
            expires_at=None if order.expires_at is None else millis(order.expires_at),
            stp=SelfTradePrevention(order.stp),
        )
    if command.kind == OrderCommand.Kind.CANCEL:
        return CancelOrder(
            seq=seq,
            timestamp=timestamp,
            order_id=command.payload["order_id"],
            account=command.account_id,
        )
    if command.kind == OrderCommand.Kind.CANCEL_ALL:
        side = command.payload.get("side")
        return CancelAll(
            seq=seq,
            timestamp=timestamp,
            account=command.account_id,
            side=Side(side) if side else None,
        )
    if command.kind == OrderCommand.Kind.EXPIRE:
        return ExpireOrders(seq=seq, timestamp=timestamp)
    if command.kind == OrderCommand.Kind.REPLACE:
        return replace_command(seq, timestamp, command.account_id, command.payload, market)
    raise ValueError(f"unknown command kind {command.kind!r}")


_ORDER = Order._meta.db_table
_CURSOR = MarketCursor._meta.db_table

_RESTING = f"""
    SELECT {OrderRow.COLUMNS} FROM {_ORDER} o
    WHERE o.market_id = %s AND o.is_live AND o.status IN ('open', 'partially_filled')
    ORDER BY o.sequence
"""


def load_book(market: Market) -> tuple[MatchingEngine, dict[int, OrderRow]]:
    """The engine as of the market's applied sequence, and its resting orders by id.

    Resting orders are re-inserted in time priority (their place command's sequence) with
    their remaining quantity, which is exactly the state matching depends on. Their quantity is
    what the engine keeps for a resting order: filled plus remaining (self-trade prevention's
    decrement lowers both). Cursor and orders are read in one snapshot, so a commit landing in
    between cannot pair one batch's cursor with another's orders.
    """
    MarketCursor.objects.get_or_create(market=market)
    outermost = not connection.in_atomic_block  # inside a caller's transaction, use its snapshot
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute(
            f"SELECT applied_sequence, event_sequence FROM {_CURSOR} WHERE market_id = %s",
            [market.pk],
        )
        applied_sequence, event_sequence = cursor.fetchone()
        cursor.execute(_RESTING, [market.pk])
        rows = [OrderRow(*row) for row in cursor.fetchall()]
    lot, tick = market.lot_size, market.tick_size
    orders: list[dict[str, Any]] = [
        {
            "order_id": row.pk,
            "account": row.account_id,
            "side": row.side,
            "price": row.price // tick,
            "quantity": (row.filled_quantity + row.remaining_quantity) // lot,
            "remaining": row.remaining_quantity // lot,
            "priority": row.sequence,
            "expires_at": row.expires_ms,
            "stp": row.stp,
            "time_in_force": engine_tif(row).value,
        }
        for row in rows
    ]
    engine = MatchingEngine.restore(
        {
            "format": SNAPSHOT_FORMAT,
            "spec": market.engine_spec().to_dict(),
            "last_seq": applied_sequence,
            "event_seq": event_sequence,
            "orders": orders,
        }
    )
    return engine, {row.pk: row for row in rows}


def rebuild_engine(market: Market) -> MatchingEngine:
    """The engine as of the market's applied sequence (see ``load_book``)."""
    return load_book(market)[0]
