"""risk_check_order: each limit, its code and status, the order of the checks, resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exchange.accounts.models import Account
from exchange.errors import exception_handler
from exchange.markets.models import Asset, Market
from exchange.risk.errors import (
    DailyNotionalLimit,
    MarketKillSwitch,
    MarketNotAllowed,
    OpenOrdersLimit,
    OrderNotionalLimit,
    OrderQuantityLimit,
    PositionLimit,
)
from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults, TierMarketAllowlist
from exchange.risk.selectors import effective_limits
from exchange.risk.services import (
    kill_switch_set,
    risk_check_order,
    risk_override_set,
    tier_allow,
    tier_disallow,
)
from exchange.trading.models import Order
from tests.factories import USDC, WETH
from tests.risk.support import fund, make_market, make_order, snapshot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def check(
    account: Account,
    market: Market,
    *,
    side: str = "buy",
    price: int | None = 2_000 * USDC,
    quantity: int = WETH,
    now: datetime = NOW,
) -> None:
    risk_check_order(
        account=account, market=market, side=side, price=price, quantity=quantity, now=now
    )


def defaults(market: Market, **values: object) -> None:
    MarketRiskDefaults.objects.filter(market=market).update(**values)


def rejected(error_type: type[Exception], call) -> Exception:  # type: ignore[no-untyped-def]
    """Assert ``call`` raises ``error_type`` and that nothing was written meanwhile."""
    before = snapshot()
    with pytest.raises(error_type) as caught:
        call()
    assert snapshot() == before
    return caught.value


def test_new_market_gets_defaults_and_the_standard_tier(market: Market, trader: Account) -> None:
    row = MarketRiskDefaults.objects.get(market=market)
    assert (row.kill_switch, row.rate_limit_per_second, row.rate_limit_burst) == (False, 10, 20)
    assert list(TierMarketAllowlist.objects.values_list("tier", "market_id")) == [
        ("standard", market.pk)
    ]
    check(trader, market)  # a standard account may trade it with the defaults


def test_allowlist_is_deny_by_default(market: Market, make_trader) -> None:
    vip = make_trader(tier="vip")
    error = rejected(MarketNotAllowed, lambda: check(vip, market))
    assert (error.status_code, error.code) == (403, "market_not_allowed")
    assert error.extra == {"market": "WETH-USDC", "tier": "vip"}

    tier_allow(tier="vip", market=market)
    check(vip, market)

    standard = make_trader()
    assert tier_disallow(tier="standard", market=market)
    rejected(MarketNotAllowed, lambda: check(standard, market))


def test_allowlist_is_per_market(weth, usdc, make_trader) -> None:
    first, second = make_market(weth, usdc), make_market(usdc, weth, symbol="USDC-WETH")
    vip = make_trader(tier="vip")
    tier_allow(tier="vip", market=first)
    check(vip, first)
    rejected(MarketNotAllowed, lambda: check(vip, second, price=10**15, quantity=USDC))


def test_kill_switch_halts_everyone_and_comes_first(market: Market, make_trader) -> None:
    standard, unlisted = make_trader(), make_trader(tier="unlisted")
    kill_switch_set(market=market, enabled=True)
    error = rejected(MarketKillSwitch, lambda: check(standard, market))
    assert (error.status_code, error.code, error.extra) == (
        409,
        "market_kill_switch",
        {"market": "WETH-USDC"},
    )
    # Before the allowlist: an account that may not trade the market still hears the halt.
    rejected(MarketKillSwitch, lambda: check(unlisted, market, side="sell", price=None))

    kill_switch_set(market=market, enabled=False)
    check(standard, market)


def test_order_quantity_limit(market: Market, trader: Account) -> None:
    defaults(market, max_order_quantity=2 * WETH)
    check(trader, market, quantity=2 * WETH)  # at the limit is allowed
    error = rejected(OrderQuantityLimit, lambda: check(trader, market, quantity=2 * WETH + 10**15))
    assert (error.status_code, error.code) == (422, "order_quantity_limit")
    assert error.extra == {"limit": "2", "requested": "2.001", "asset": "WETH"}
    # Sells too, and market orders without a price.
    rejected(
        OrderQuantityLimit,
        lambda: check(trader, market, side="sell", price=None, quantity=3 * WETH),
    )


def test_order_notional_limit(market: Market, trader: Account) -> None:
    defaults(market, max_order_notional=5_000 * USDC)
    check(trader, market, price=2_500 * USDC, quantity=2 * WETH)  # exactly 5,000
    error = rejected(
        OrderNotionalLimit,
        lambda: check(trader, market, price=2_500_01 * USDC // 100, quantity=2 * WETH),
    )
    assert (error.status_code, error.code) == (422, "order_notional_limit")
    assert error.extra == {"limit": "5000", "requested": "5000.02", "asset": "USDC"}
    rejected(OrderNotionalLimit, lambda: check(trader, market, side="sell", quantity=3 * WETH))


def test_market_sell_without_price_skips_the_notional_checks(market, trader) -> None:
    defaults(market, max_order_notional=1, max_daily_notional=1)
    check(trader, market, side="sell", price=None, quantity=100 * WETH)
    rejected(OrderNotionalLimit, lambda: check(trader, market, side="sell", quantity=WETH))


def test_open_orders_limit_counts_only_open_orders_of_this_market(
    weth, usdc, market: Market, make_trader
) -> None:
    trader, other = make_trader(), make_trader()
    other_market = make_market(usdc, weth, symbol="USDC-WETH")
    defaults(market, max_open_orders=3)
    for status in (Order.Status.ACCEPTED, Order.Status.OPEN):
        make_order(trader, market, status=status)
    for status in (Order.Status.FILLED, Order.Status.CANCELLED, Order.Status.REJECTED):
        make_order(trader, market, status=status)
    make_order(trader, other_market, price=10**15, quantity=USDC)
    make_order(other, market)
    check(trader, market)  # 2 open here: the third is allowed

    make_order(trader, market, status=Order.Status.PARTIALLY_FILLED, filled=10**15)
    error = rejected(OpenOrdersLimit, lambda: check(trader, market))
    assert (error.status_code, error.code, error.extra) == (
        422,
        "open_orders_limit",
        {"limit": 3, "current": 3},
    )


def test_daily_notional_limit_counts_todays_placed_orders(
    weth, usdc, market: Market, make_trader
) -> None:
    trader, other = make_trader(), make_trader()
    defaults(market, max_daily_notional=10_000 * USDC)
    midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    # Count: today's orders whatever became of them (placed notional), except engine rejects.
    make_order(trader, market, price=2_000 * USDC, quantity=2 * WETH, created_at=midnight)
    make_order(
        trader,
        market,
        price=1_000 * USDC,
        quantity=WETH,
        status=Order.Status.FILLED,
        created_at=NOW,
    )
    make_order(
        trader,
        market,
        side="sell",
        price=3_000 * USDC,
        quantity=WETH,
        status=Order.Status.CANCELLED,
        created_at=NOW,
    )
    # Do not count: yesterday, rejected, unpriced, another market, another account.
    make_order(trader, market, quantity=50 * WETH, created_at=midnight - timedelta(microseconds=1))
    make_order(trader, market, quantity=50 * WETH, status=Order.Status.REJECTED, created_at=NOW)
    make_order(trader, market, side="sell", price=None, quantity=50 * WETH, created_at=NOW)
    make_order(
        trader,
        make_market(usdc, weth, symbol="USDC-WETH"),
        price=10**15,
        quantity=USDC,
        created_at=NOW,
    )
    make_order(other, market, quantity=50 * WETH, created_at=NOW)

    # 8,000 placed today: 2,000 more is exactly the limit.
    check(trader, market, price=2_000 * USDC, quantity=WETH)
    error = rejected(
        DailyNotionalLimit, lambda: check(trader, market, price=2_000_01 * USDC // 100)
    )
    assert (error.status_code, error.code) == (422, "daily_notional_limit")
    assert error.extra == {
        "limit": "10000",
        "current": "8000",
        "requested": "2000.01",
        "asset": "USDC",
    }
    # Tomorrow (UTC) starts from zero.
    check(trader, market, price=9_000 * USDC, now=midnight + timedelta(days=1))


def test_position_limit_counts_balance_and_open_buys_of_the_base_asset(
    weth, usdc, market: Market, trader: Account
) -> None:
    defaults(market, max_position=10 * WETH)
    fund(trader, weth, 3 * WETH)
    make_order(trader, market, quantity=4 * WETH, filled=WETH, status="partially_filled")
    make_order(trader, market, quantity=WETH, status=Order.Status.CANCELLED)
    make_order(trader, market, side="sell", quantity=WETH)
    # Another market with the same base asset counts toward the same exposure.
    dai = Asset.objects.create(symbol="DAI", decimals=6)
    make_order(trader, make_market(weth, dai), quantity=2 * WETH)
    # Exposure: 3 held + 3 unfilled + 2 elsewhere = 8.
    check(trader, market, quantity=2 * WETH)
    error = rejected(PositionLimit, lambda: check(trader, market, quantity=2 * WETH + 10**15))
    assert (error.status_code, error.code) == (422, "position_limit")
    assert error.extra == {"limit": "10", "current": "8", "requested": "2.001", "asset": "WETH"}
    # Selling reduces exposure: never refused for position.
    check(trader, market, side="sell", quantity=100 * WETH)


def test_checks_run_in_a_fixed_order(market: Market, trader: Account) -> None:
    defaults(
        market,
        max_order_quantity=WETH,
        max_order_notional=1,
        max_open_orders=0,
        max_daily_notional=1,
        max_position=0,
    )
    order = {"price": 2_000 * USDC, "quantity": 2 * WETH}
    expected = [
        ("max_order_quantity", OrderQuantityLimit),
        ("max_order_notional", OrderNotionalLimit),
        ("max_open_orders", OpenOrdersLimit),
        ("max_daily_notional", DailyNotionalLimit),
        ("max_position", PositionLimit),
    ]
    for field, error_type in expected:
        rejected(error_type, lambda: check(trader, market, **order))
        defaults(market, **{field: None})
    check(trader, market, **order)


def test_overrides_beat_defaults_both_ways(market: Market, make_trader) -> None:
    tight, loose, plain = make_trader(), make_trader(), make_trader()
    defaults(market, max_order_quantity=5 * WETH)
    risk_override_set(account=tight, market=market, limits={"max_order_quantity": WETH})
    risk_override_set(account=loose, market=market, limits={"max_order_quantity": 50 * WETH})

    rejected(OrderQuantityLimit, lambda: check(tight, market, quantity=2 * WETH))
    check(loose, market, quantity=20 * WETH)
    check(plain, market, quantity=5 * WETH)
    rejected(OrderQuantityLimit, lambda: check(plain, market, quantity=6 * WETH))

    limits = effective_limits(account=tight, market=market)
    assert (limits.max_order_quantity, limits.overridden) == (WETH, ("max_order_quantity",))


def test_a_null_override_inherits_the_default(market: Market, trader: Account) -> None:
    defaults(market, max_open_orders=1)
    risk_override_set(
        account=trader, market=market, limits={"max_open_orders": 5, "max_order_quantity": 2 * WETH}
    )
    make_order(trader, market)
    check(trader, market)
    # Clearing one override leaves the other; clearing both removes the row.
    risk_override_set(account=trader, market=market, limits={"max_open_orders": None})
    rejected(OpenOrdersLimit, lambda: check(trader, market))
    assert AccountRiskOverride.objects.get().values() == {"max_order_quantity": 2 * WETH}
    risk_override_set(account=trader, market=market, limits={"max_order_quantity": None})
    assert not AccountRiskOverride.objects.exists()


def test_a_market_without_defaults_row_uses_permissive_defaults(market, make_trader) -> None:
    MarketRiskDefaults.objects.all().delete()
    trader = make_trader()
    limits = effective_limits(account=trader, market=market)
    assert (limits.kill_switch, limits.max_order_quantity, limits.max_open_orders) == (
        False,
        None,
        500,
    )
    assert (limits.rate_limit_per_second, limits.rate_limit_burst) == (10, 20)
    check(trader, market, quantity=900 * WETH)
    # ...but the allowlist stays deny by default.
    rejected(MarketNotAllowed, lambda: check(make_trader(tier="vip"), market))


def test_error_body_through_the_api_exception_handler(market: Market, trader: Account) -> None:
    defaults(market, max_order_quantity=WETH)
    error = rejected(OrderQuantityLimit, lambda: check(trader, market, quantity=2 * WETH))
    response = exception_handler(error, {})
    assert response.status_code == 422
    assert response.data == {
        "code": "order_quantity_limit",
        "message": "The order's quantity is above this account's limit.",
        "extra": {"limit": "1", "requested": "2", "asset": "WETH"},
    }
