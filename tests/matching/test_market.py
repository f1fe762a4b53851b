"""MarketSpec, unit conversion and the validation helpers the trading API calls."""

from __future__ import annotations

import pytest

from exchange.matching import (
    MarketSpec,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    validate_order,
    validate_replace,
)
from exchange.matching.enums import REJECT_REASONS

SPEC = MarketSpec(
    symbol="BTC-USDC",
    tick_size=10_000,  # 0.01 USDC with 6 decimals
    lot_size=10**13,  # 0.00001 BTC with 18 decimals
    min_quantity=10,
    max_quantity=1_000_000,
    max_price=10**9,
)


def test_reject_codes_are_stable_lowercase_snake_case_and_unique():
    assert len(set(REJECT_REASONS)) == len(REJECT_REASONS)
    for code in REJECT_REASONS:
        assert code == code.lower() and " " not in code and "-" not in code
    # Codes are an API: these must never be renamed.
    for code in [
        "invalid_price",
        "invalid_quantity",
        "post_only_would_take",
        "fok_not_filled",
        "unknown_order",
        "duplicate_order_id",
        "expired",
        "quantity_below_min",
    ]:
        assert code in REJECT_REASONS


def test_unit_conversion():
    assert SPEC.price_to_ticks(65_000_120_000) == 6_500_012
    assert SPEC.price_to_ticks(65_000_123_456) is None  # not on a tick
    assert SPEC.price_to_ticks(0) is None
    assert SPEC.price_to_ticks(-10_000) is None
    assert SPEC.quantity_to_lots(25 * 10**13) == 25
    assert SPEC.quantity_to_lots(10**13 + 1) is None
    assert SPEC.ticks_to_price(6_500_012) == 65_000_120_000
    assert SPEC.lots_to_quantity(25) == 25 * 10**13


def test_spec_round_trips_and_rejects_nonsense():
    assert MarketSpec.from_dict(SPEC.to_dict()) == SPEC
    with pytest.raises(ValueError):
        MarketSpec(symbol="X", tick_size=0, lot_size=1)
    with pytest.raises(ValueError):
        MarketSpec(symbol="X", tick_size=1, lot_size=1, min_quantity=5, max_quantity=4)
    with pytest.raises(ValueError):
        MarketSpec(symbol="X", tick_size=1, lot_size=1, max_price=2**63)
    with pytest.raises(ValueError):
        MarketSpec(symbol="", tick_size=1, lot_size=1)
    with pytest.raises(ValueError):
        MarketSpec(symbol="X", tick_size=1, lot_size=1, default_stp="cancel_maker")  # type: ignore[arg-type]


def ok(**overrides):
    fields = {"order_id": 1, "account": 2, "side": Side.BUY, "quantity": 10, "price": 5}
    fields.update(overrides)
    return validate_order(SPEC, **fields)


def test_validate_order_accepts_valid_orders():
    assert ok() is None
    assert ok(order_type=OrderType.MARKET, price=None) is None
    assert ok(order_type=OrderType.MARKET, price=None, time_in_force=TimeInForce.FOK) is None
    assert ok(time_in_force=TimeInForce.POST_ONLY, expires_at=100, timestamp=99) is None
    assert ok(stp=SelfTradePrevention.DECREMENT_AND_CANCEL) is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"order_id": None}, RejectReason.INVALID_ORDER_ID),
        ({"account": 2.0}, RejectReason.INVALID_ACCOUNT),
        ({"side": "buy"}, RejectReason.INVALID_SIDE),
        ({"order_type": "market"}, RejectReason.INVALID_ORDER_TYPE),
        ({"time_in_force": "ioc"}, RejectReason.INVALID_TIME_IN_FORCE),
        (
            {"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.GTC},
            RejectReason.INVALID_TIME_IN_FORCE,
        ),
        ({"stp": "cancel_both"}, RejectReason.INVALID_SELF_TRADE_PREVENTION),
        ({"price": None}, RejectReason.INVALID_PRICE),
        ({"price": 10**9 + 1}, RejectReason.INVALID_PRICE),
        ({"price": 1.0}, RejectReason.INVALID_PRICE),
        ({"quantity": False}, RejectReason.INVALID_QUANTITY),
        ({"quantity": 9}, RejectReason.QUANTITY_BELOW_MIN),
        ({"quantity": 1_000_001}, RejectReason.QUANTITY_ABOVE_MAX),
        ({"expires_at": -1}, RejectReason.INVALID_EXPIRY),
        ({"expires_at": 50, "timestamp": 50}, RejectReason.EXPIRED),
        # The first failing check wins, in a fixed order.
        ({"price": 0, "quantity": 0}, RejectReason.INVALID_PRICE),
    ],
)
def test_validate_order_reports_the_engines_reason(overrides, reason):
    assert ok(**overrides) is reason


def test_validate_replace():
    assert validate_replace(SPEC, price=7) is None
    assert validate_replace(SPEC, quantity=10) is None
    assert validate_replace(SPEC) is RejectReason.INVALID_REPLACE
    assert validate_replace(SPEC, price=-1) is RejectReason.INVALID_PRICE
    assert validate_replace(SPEC, quantity=5) is RejectReason.QUANTITY_BELOW_MIN
    assert validate_replace(SPEC, quantity="10") is RejectReason.INVALID_QUANTITY
