"""Clearway's matching engine core: a pure, deterministic price-time order book.

Plain Python on ``sortedcontainers``: no Django, no I/O, no clock, no callbacks. Commands go in,
events come out; the matching worker is the only adapter between this package and the database.

Units
    Prices are positive integer *ticks* and quantities positive integer *lots*. A
    :class:`MarketSpec` carries ``tick_size`` / ``lot_size`` (how many API integer units one tick
    or lot is), ``min_quantity`` / ``max_quantity`` (lots), ``max_price`` (ticks) and the market's
    default self-trade prevention mode. The trading API converts at the REST edge with
    ``spec.price_to_ticks`` / ``spec.quantity_to_lots`` and calls :func:`validate_order` /
    :func:`validate_replace` before sequencing a command; both return the same
    :class:`RejectReason` codes the engine would put in an ``OrderRejected`` event.

Commands (frozen dataclasses, keyword-only; ``seq`` assigned upstream, strictly increasing;
``timestamp`` an int in the same unit as ``expires_at``)
    ``PlaceOrder(seq, timestamp, order_id, account, side, quantity, price=None,
    order_type=LIMIT, time_in_force=None, expires_at=None, stp=None)``,
    ``CancelOrder(seq, timestamp, order_id, account)``,
    ``CancelAll(seq, timestamp, account, side=None)``,
    ``ReplaceOrder(seq, timestamp, order_id, account, price=None, quantity=None)`` (``quantity``
    is the new total, filled included; lowering it at the same price keeps time priority), and
    ``ExpireOrders(seq, timestamp)``.

Time in force
    GTC rests; IOC takes what it can and cancels the rest; FOK fills completely at arrival or is
    rejected (``fok_not_filled``); POST_ONLY rests like GTC but is rejected
    (``post_only_would_take``) if it would take. ``time_in_force=None`` means GTC for a limit
    order and IOC for a market order. Any command's ``timestamp`` first expires resting orders
    with ``expires_at <= timestamp`` (``cancelled`` events with reason ``expired``).

Market orders
    ``quantity`` in lots; an optional ``price`` is a protection limit; the unfilled remainder is
    cancelled with reason ``market_remainder``.

Self-trade prevention
    When a taker meets a resting order of the same account, the taker's mode (``stp`` or the
    market default) applies: ``cancel_taker``, ``cancel_maker``, ``cancel_both`` or
    ``decrement_and_cancel``.

Events (frozen dataclasses with ``to_dict()`` / ``from_dict()``; see ``events.py`` for fields
and ordering)
    ``OrderAccepted``, ``OrderRejected`` (``reason``), ``Fill`` (``trade_id`` is
    ``f"{market}-{seq}-{n}"`` for the command's n-th fill), ``OrderCancelled`` (``reason``:
    user, ioc_remainder, market_remainder, self_trade_prevention, expired), ``OrderReplaced``
    and ``LevelChanged`` (a level's new total, for websocket deltas). Each carries the command's
    ``seq`` and a gapless per-market ``event_seq``.

Reads and snapshots
    ``engine.best_bid()`` / ``best_ask()`` give ``(price, quantity)`` or None;
    ``engine.depth(n)`` the top n aggregated levels; ``get_order`` / ``open_orders`` views of
    open orders; ``engine.next_expiry()`` the earliest pending ``expires_at`` (when to log an
    ``ExpireOrders``). ``engine.snapshot()`` is a JSON-compatible dict and
    ``MatchingEngine.restore(data)`` rebuilds an identical engine: replaying the commands after
    the snapshot gives byte-identical events.

Worked example::

    >>> from exchange.matching import (
    ...     CancelOrder, MarketSpec, MatchingEngine, PlaceOrder, ReplaceOrder, Side, TimeInForce,
    ... )
    >>> engine = MatchingEngine(MarketSpec(symbol="ETH-USDC", tick_size=10_000, lot_size=10**15))
    >>> events = engine.submit(PlaceOrder(
    ...     seq=1, timestamp=1_000, order_id="a1", account=7, side=Side.SELL, price=2_000,
    ...     quantity=5))
    >>> [e.type for e in events]
    ['accepted', 'level']
    >>> events[1].to_dict()
    {'type': 'level', 'market': 'ETH-USDC', 'seq': 1, 'event_seq': 2, 'side': 'sell', \
'price': 2000, 'quantity': 5}
    >>> events = engine.submit(PlaceOrder(
    ...     seq=2, timestamp=1_001, order_id="b1", account=8, side=Side.BUY, price=2_001,
    ...     quantity=7, time_in_force=TimeInForce.IOC))
    >>> [e.type for e in events]
    ['accepted', 'fill', 'cancelled', 'level']
    >>> fill = events[1]
    >>> fill.trade_id, fill.price, fill.quantity, fill.maker_order_id, fill.taker_remaining
    ('ETH-USDC-2-1', 2000, 5, 'a1', 2)
    >>> events[2].reason.value, events[2].quantity
    ('ioc_remainder', 2)
    >>> engine.best_ask() is None
    True
    >>> _ = engine.submit(PlaceOrder(
    ...     seq=3, timestamp=1_002, order_id="b2", account=8, side=Side.BUY, price=1_990,
    ...     quantity=4))
    >>> [e.type for e in engine.submit(ReplaceOrder(
    ...     seq=4, timestamp=1_003, order_id="b2", account=8, quantity=3))]
    ['replaced', 'level']
    >>> engine.depth(5).to_dict()
    {'bids': [[1990, 3]], 'asks': []}
    >>> rejected = engine.submit(CancelOrder(seq=5, timestamp=1_004, order_id="zz", account=8))
    >>> rejected[0].reason.value
    'unknown_order'
    >>> copy = MatchingEngine.restore(engine.snapshot())
    >>> copy.snapshot() == engine.snapshot()
    True

The worker persists ``command.to_dict()`` / ``event.to_dict()`` (``command_from_dict`` /
``event_from_dict`` invert them), feeds commands to ``submit`` in ``seq`` order, and snapshots
with ``engine.snapshot()`` to bound replay time.
"""

from __future__ import annotations

from exchange.matching.book import Depth, OpenOrder
from exchange.matching.commands import (
    AccountId,
    CancelAll,
    CancelOrder,
    Command,
    ExpireOrders,
    OrderId,
    PlaceOrder,
    ReplaceOrder,
    command_from_dict,
    command_to_dict,
)
from exchange.matching.engine import CommandError, MatchingEngine, SequenceError
from exchange.matching.enums import (
    CancelReason,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.matching.events import (
    Event,
    Fill,
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    OrderReplaced,
    event_from_dict,
    event_to_dict,
)
from exchange.matching.market import MarketSpec, validate_order, validate_replace

__all__ = [
    "AccountId",
    "CancelAll",
    "CancelOrder",
    "CancelReason",
    "Command",
    "CommandError",
    "Depth",
    "Event",
    "ExpireOrders",
    "Fill",
    "LevelChanged",
    "MarketSpec",
    "MatchingEngine",
    "OpenOrder",
    "OrderAccepted",
    "OrderCancelled",
    "OrderId",
    "OrderRejected",
    "OrderReplaced",
    "OrderType",
    "PlaceOrder",
    "RejectReason",
    "ReplaceOrder",
    "SelfTradePrevention",
    "SequenceError",
    "Side",
    "TimeInForce",
    "command_from_dict",
    "command_to_dict",
    "event_from_dict",
    "event_to_dict",
    "validate_order",
    "validate_replace",
]
