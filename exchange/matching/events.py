"""Events: what the engine returns for each command, in the order they happened.

Every event carries the market symbol, the ``seq`` of the command that caused it and
``event_seq``, a per-market counter that increases by one per event with no gaps (the worker can
detect a lost or duplicated event). ``to_dict()`` gives a JSON-compatible dict of ints, strs, bools
and None, with a ``type`` key; :func:`event_from_dict` inverts it.

Events of one command come in this order: ``accepted`` or ``rejected``; then, while matching,
``fill`` and self-trade ``cancelled`` events; then the taker's ``cancelled`` remainder if any; and
last one ``level`` event per book level whose total changed, in the order the levels were first
touched, carrying the level's final total (0 = level gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from exchange.matching.commands import AccountId, OrderId
from exchange.matching.enums import (
    CancelReason,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)


class _EventBase:
    """Serialisation shared by every event class."""

    __slots__ = ()
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict with a ``type`` key; enum members become their string values."""
        return event_to_dict(self)  # type: ignore[arg-type]

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Event:
        return event_from_dict(data)


@dataclass(frozen=True, slots=True)
class OrderAccepted(_EventBase):
    """A place command passed validation; fills, if any, follow."""

    type: ClassVar[str] = "accepted"

    market: str
    seq: int
    event_seq: int
    order_id: OrderId
    account: AccountId
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce  # resolved: never None
    price: int | None  # None for a market order without a protection price
    quantity: int
    expires_at: int | None
    stp: SelfTradePrevention  # resolved: the market default when the command left it out


@dataclass(frozen=True, slots=True)
class OrderRejected(_EventBase):
    """A command changed nothing. ``command`` is the command's type ("place", "cancel", ...)."""

    type: ClassVar[str] = "rejected"

    market: str
    seq: int
    event_seq: int
    command: str
    order_id: OrderId | None  # None for cancel-all, or if the command's was not an int or str
    account: AccountId | None  # None if the command's was not an int or str
    reason: RejectReason


@dataclass(frozen=True, slots=True)
class Fill(_EventBase):
    """One match between a taker and a resting maker, at the maker's price.

    ``trade_id`` is ``f"{market}-{seq}-{index}"`` with ``index`` counting this command's fills
    from 1: unique per market, stable across replays, and readable in logs. Remaining quantities
    are what is left open on each order after this fill.
    """

    type: ClassVar[str] = "fill"

    market: str
    seq: int
    event_seq: int
    trade_id: str
    price: int
    quantity: int
    taker_side: Side
    maker_order_id: OrderId
    maker_account: AccountId
    maker_remaining: int
    taker_order_id: OrderId
    taker_account: AccountId
    taker_remaining: int


@dataclass(frozen=True, slots=True)
class OrderCancelled(_EventBase):
    """``quantity`` lots of an order were cancelled; ``remaining`` stay open.

    ``remaining`` is 0 except for a decrement by self-trade prevention (decrement-and-cancel),
    which takes quantity off an order that stays open with its time priority.
    """

    type: ClassVar[str] = "cancelled"

    market: str
    seq: int
    event_seq: int
    order_id: OrderId
    account: AccountId
    side: Side
    price: int | None
    quantity: int
    remaining: int
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class OrderReplaced(_EventBase):
    """An open order's price and/or total quantity changed.

    With ``priority_kept`` false the order was re-queued at the back of its (new) level and may
    then trade as a taker: fills and cancellations for it follow.
    """

    type: ClassVar[str] = "replaced"

    market: str
    seq: int
    event_seq: int
    order_id: OrderId
    account: AccountId
    side: Side
    old_price: int
    old_quantity: int
    price: int
    quantity: int  # new total, filled included
    remaining: int  # open quantity after the replace
    priority_kept: bool


@dataclass(frozen=True, slots=True)
class LevelChanged(_EventBase):
    """A book level's total open quantity after the command (0 = the level is gone)."""

    type: ClassVar[str] = "level"

    market: str
    seq: int
    event_seq: int
    side: Side
    price: int
    quantity: int


Event = OrderAccepted | OrderRejected | Fill | OrderCancelled | OrderReplaced | LevelChanged

EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (OrderAccepted, OrderRejected, Fill, OrderCancelled, OrderReplaced, LevelChanged)
}

_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "side": Side,
    "taker_side": Side,
    "order_type": OrderType,
    "time_in_force": TimeInForce,
    "stp": SelfTradePrevention,
}
_REASON_ENUM: dict[str, type[StrEnum]] = {"rejected": RejectReason, "cancelled": CancelReason}


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-compatible dict with a ``type`` key; enum members become their string values."""
    data: dict[str, Any] = {"type": event.type}
    for name in event.__slots__:
        value = getattr(event, name)
        data[name] = value.value if isinstance(value, StrEnum) else value
    return data


def event_from_dict(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_to_dict`."""
    kind = data["type"]
    cls = EVENT_TYPES[kind]
    args = []
    for name in cls.__slots__:
        value = data[name]
        if value is not None:
            enum_cls = _REASON_ENUM[kind] if name == "reason" else _ENUM_FIELDS.get(name)
            if enum_cls is not None:
                value = enum_cls(value)
        args.append(value)
    return cls(*args)


def _fast_constructor(cls: type) -> Callable[..., Any]:
    """A positional constructor for a frozen slotted dataclass, about 4x faster than ``cls()``.

    A frozen dataclass ``__init__`` sets each field through ``object.__setattr__`` (about 1 us
    for a dozen fields on this machine), which would be most of the engine's time per command.
    The returned function allocates a mutable twin class with the identical slot layout, assigns
    the fields, then retypes the object to ``cls``: the result is a genuine, equal, hashable,
    frozen ``cls`` instance. It is a plain function rather than the twin's ``__init__`` because
    CPython 3.11 inlines Python-to-Python calls but not ``type.__call__``. Only the engine uses
    it.
    """
    names = cls.__slots__
    # Same bases and same __slots__ tuple: CPython then allows assigning __class__ between them.
    twin = type(f"_{cls.__name__}Builder", cls.__bases__, {"__slots__": names})
    body = "".join(f"    obj.{name} = {name}\n" for name in names)
    source = (
        f"def make_{cls.__name__}({', '.join(names)}):\n"
        f"    obj = _new(_twin)\n{body}    obj.__class__ = _cls\n    return obj\n"
    )
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    exec(source, namespace)
    return namespace[f"make_{cls.__name__}"]


make_accepted = _fast_constructor(OrderAccepted)
make_rejected = _fast_constructor(OrderRejected)
make_fill = _fast_constructor(Fill)
make_cancelled = _fast_constructor(OrderCancelled)
make_replaced = _fast_constructor(OrderReplaced)
make_level = _fast_constructor(LevelChanged)
