"""Commands: what the matching worker feeds the engine, one at a time, in sequence order.

Every command carries ``seq``, the sequence number assigned upstream when the command was logged
(the engine never invents one and requires it to increase strictly), and ``timestamp``, the
logged time in the same integer unit as ``expires_at`` (the engine never reads a clock).

Order ids and accounts are ints or strs chosen upstream; prices are ticks and quantities lots.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from exchange.matching.enums import OrderType, SelfTradePrevention, Side, TimeInForce

OrderId = int | str
AccountId = int | str


class _CommandBase:
    """Serialisation shared by every command class."""

    __slots__ = ()
    type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (ints, strs, None) with a ``type`` key."""
        return command_to_dict(self)  # type: ignore[arg-type]

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Command:
        return command_from_dict(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(_CommandBase):
    """Place a limit or market order.

    ``time_in_force`` None means GTC for a limit order and IOC for a market order. A market
    order's optional ``price`` is a protection limit it never trades beyond. ``stp`` None means
    the market's default self-trade prevention mode.
    """

    type: ClassVar[str] = "place"

    seq: int
    timestamp: int
    order_id: OrderId
    account: AccountId
    side: Side
    quantity: int
    price: int | None = None
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce | None = None
    expires_at: int | None = None
    stp: SelfTradePrevention | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(_CommandBase):
    """Cancel one open order of ``account``."""

    type: ClassVar[str] = "cancel"

    seq: int
    timestamp: int
    order_id: OrderId
    account: AccountId


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAll(_CommandBase):
    """Cancel every open order of ``account``, or only those on ``side``."""

    type: ClassVar[str] = "cancel_all"

    seq: int
    timestamp: int
    account: AccountId
    side: Side | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceOrder(_CommandBase):
    """Amend an open order's price and/or total quantity (filled quantity included, as in FIX).

    Lowering the quantity at an unchanged price keeps time priority; a price change or a higher
    quantity loses it, and the order may then trade as a taker at its new price.
    """

    type: ClassVar[str] = "replace"

    seq: int
    timestamp: int
    order_id: OrderId
    account: AccountId
    price: int | None = None
    quantity: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpireOrders(_CommandBase):
    """Advance the engine's notion of time: expire orders whose ``expires_at`` <= ``timestamp``.

    Every command does this before it is applied; this one does only that, so the worker can
    expire orders on a quiet market.
    """

    type: ClassVar[str] = "expire"

    seq: int
    timestamp: int


Command = PlaceOrder | CancelOrder | CancelAll | ReplaceOrder | ExpireOrders

_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "side": Side,
    "order_type": OrderType,
    "time_in_force": TimeInForce,
    "stp": SelfTradePrevention,
}
COMMAND_TYPES: dict[str, type[Command]] = {
    cls.type: cls for cls in (PlaceOrder, CancelOrder, CancelAll, ReplaceOrder, ExpireOrders)
}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


def command_to_dict(command: Command) -> dict[str, Any]:
    """JSON-compatible dict (ints, strs, None) with a ``type`` key."""
    data: dict[str, Any] = {"type": command.type}
    for name in command.__slots__:
        data[name] = _plain(getattr(command, name))
    return data


def command_from_dict(data: dict[str, Any]) -> Command:
    """Inverse of :func:`command_to_dict`.

    An enum field holding an unknown value is passed through as it is, so the engine rejects the
    command with an event (for example ``invalid_side``) rather than the worker crashing on it.
    """
    cls = COMMAND_TYPES[data["type"]]
    kwargs: dict[str, Any] = {}
    for name in cls.__slots__:
        if name not in data:
            continue
        value = data[name]
        enum_cls = _ENUM_FIELDS.get(name)
        if enum_cls is not None and value is not None:
            with suppress(ValueError):
                value = enum_cls(value)
        kwargs[name] = value
    return cls(**kwargs)
