"""Market specification and the order validation shared by the engine and the trading API.

Prices are integer ticks and quantities integer lots everywhere in the engine. ``tick_size`` and
``lot_size`` say how many of the trading API's integer units (``exchange/money.py``) one tick and
one lot are; only the REST edge converts, with ``price_to_ticks`` / ``quantity_to_lots``.

The API calls ``validate_order`` / ``validate_replace`` before a command is sequenced; the engine
runs the same checks again when the command arrives (a command log may be replayed under a newer
spec), so a trader sees the same reason code either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchange.matching.enums import (
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

# Postgres bigint: every price and quantity must fit the persisted columns.
MAX_INT64 = 2**63 - 1

# Membership by identity: a plain "buy" string equals Side.BUY, but the engine compares members
# with ``is``, so only real enum members may pass validation.
_SIDE_IDS = frozenset(map(id, Side))
_TIF_IDS = frozenset(map(id, TimeInForce))
_STP_IDS = frozenset(map(id, SelfTradePrevention))
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_POST_ONLY = TimeInForce.POST_ONLY


def _positive_int(value: object) -> bool:
    # ``type() is int`` on purpose: bool, float, Decimal and int subclasses are all refused.
    return type(value) is int and value > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketSpec:
    """One market's trading rules. Quantities are in lots, prices in ticks."""

    symbol: str
    tick_size: int  # API integer price units per tick
    lot_size: int  # API integer quantity units per lot
    min_quantity: int = 1  # lots
    max_quantity: int = MAX_INT64  # lots
    max_price: int = MAX_INT64  # ticks
    default_stp: SelfTradePrevention = SelfTradePrevention.CANCEL_MAKER

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise ValueError("symbol must be a non-empty string")
        for name in ("tick_size", "lot_size", "min_quantity", "max_quantity", "max_price"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive int")
        if self.min_quantity > self.max_quantity:
            raise ValueError("min_quantity must not exceed max_quantity")
        if self.max_price > MAX_INT64 or self.max_quantity > MAX_INT64:
            raise ValueError("max_price and max_quantity must fit a signed 64-bit integer")
        if id(self.default_stp) not in _STP_IDS:
            raise ValueError("default_stp must be a SelfTradePrevention")

    # -- unit conversion at the REST edge -------------------------------------------------------

    def price_to_ticks(self, price_units: int) -> int | None:
        """Ticks for a price in API units, or None if it is not a positive multiple of a tick
        (reject with ``RejectReason.PRICE_NOT_ON_TICK``)."""
        if not _positive_int(price_units):
            return None
        ticks, rest = divmod(price_units, self.tick_size)
        return ticks if rest == 0 else None

    def quantity_to_lots(self, quantity_units: int) -> int | None:
        """Lots for a quantity in API units, or None if it is not a positive multiple of a lot
        (reject with ``RejectReason.QUANTITY_NOT_ON_LOT``)."""
        if not _positive_int(quantity_units):
            return None
        lots, rest = divmod(quantity_units, self.lot_size)
        return lots if rest == 0 else None

    def ticks_to_price(self, ticks: int) -> int:
        return ticks * self.tick_size

    def lots_to_quantity(self, lots: int) -> int:
        return lots * self.lot_size

    # -- persistence -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "min_quantity": self.min_quantity,
            "max_quantity": self.max_quantity,
            "max_price": self.max_price,
            "default_stp": self.default_stp.value,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketSpec:
        return cls(
            symbol=data["symbol"],
            tick_size=data["tick_size"],
            lot_size=data["lot_size"],
            min_quantity=data["min_quantity"],
            max_quantity=data["max_quantity"],
            max_price=data["max_price"],
            default_stp=SelfTradePrevention(data["default_stp"]),
        )


def check_place(
    spec: MarketSpec,
    order_id: object,
    account: object,
    side: object,
    order_type: object,
    price: object,
    quantity: object,
    time_in_force: object,
    expires_at: object,
    stp: object,
    timestamp: int | None,
) -> RejectReason | None:
    """Positional form of :func:`validate_order`, used by the engine on every place command.

    Checks run in a fixed order and the first failure is reported, so the code for a given bad
    command never changes.
    """
    if type(order_id) is not int and type(order_id) is not str:
        return RejectReason.INVALID_ORDER_ID
    if type(account) is not int and type(account) is not str:
        return RejectReason.INVALID_ACCOUNT
    if id(side) not in _SIDE_IDS:
        return RejectReason.INVALID_SIDE
    if order_type is _LIMIT:
        if time_in_force is not None and id(time_in_force) not in _TIF_IDS:
            return RejectReason.INVALID_TIME_IN_FORCE
    elif order_type is _MARKET:
        if time_in_force is not None and (
            id(time_in_force) not in _TIF_IDS
            or time_in_force is _GTC
            or time_in_force is _POST_ONLY
        ):
            return RejectReason.INVALID_TIME_IN_FORCE
    else:
        return RejectReason.INVALID_ORDER_TYPE
    if stp is not None and id(stp) not in _STP_IDS:
        return RejectReason.INVALID_SELF_TRADE_PREVENTION
    # A market order's optional price is its protection limit: it never trades beyond it.
    if price is None:
        if order_type is _LIMIT:
            return RejectReason.INVALID_PRICE
    elif type(price) is not int or price <= 0 or price > spec.max_price:
        return RejectReason.INVALID_PRICE
    if type(quantity) is not int or quantity <= 0:
        return RejectReason.INVALID_QUANTITY
    if quantity < spec.min_quantity:
        return RejectReason.QUANTITY_BELOW_MIN
    if quantity > spec.max_quantity:
        return RejectReason.QUANTITY_ABOVE_MAX
    if expires_at is not None:
        if type(expires_at) is not int or expires_at <= 0:
            return RejectReason.INVALID_EXPIRY
        if timestamp is not None and expires_at <= timestamp:
            return RejectReason.EXPIRED
    return None


def validate_order(
    spec: MarketSpec,
    *,
    order_id: object,
    account: object,
    side: object,
    quantity: object,
    price: object = None,
    order_type: object = OrderType.LIMIT,
    time_in_force: object = None,
    expires_at: object = None,
    stp: object = None,
    timestamp: int | None = None,
) -> RejectReason | None:
    """The reason the engine would reject this order on its fields alone, or None.

    Book-dependent rejects (``duplicate_order_id``, ``post_only_would_take``,
    ``fok_not_filled``) can only come from the engine. Pass ``timestamp`` to also check
    ``expires_at`` against it.
    """
    return check_place(
        spec,
        order_id,
        account,
        side,
        order_type,
        price,
        quantity,
        time_in_force,
        expires_at,
        stp,
        timestamp,
    )


def validate_replace(
    spec: MarketSpec, *, price: object = None, quantity: object = None
) -> RejectReason | None:
    """The reason the engine would reject a replace on its fields alone, or None.

    ``quantity`` is the new total quantity (filled included), as in FIX OrderQty, so a fill racing
    the request can never leave the trader with more exposure than asked for.
    """
    if price is None and quantity is None:
        return RejectReason.INVALID_REPLACE
    if price is not None and (type(price) is not int or price <= 0 or price > spec.max_price):
        return RejectReason.INVALID_PRICE
    if quantity is not None:
        if type(quantity) is not int or quantity <= 0:
            return RejectReason.INVALID_QUANTITY
        if quantity < spec.min_quantity:
            return RejectReason.QUANTITY_BELOW_MIN
        if quantity > spec.max_quantity:
            return RejectReason.QUANTITY_ABOVE_MAX
    return None
