"""Risk reads: effective limits and the order aggregates the checks compare them with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import F, Sum
from eth_utils import is_hex_address, to_checksum_address

from exchange.accounts.models import Account
from exchange.ledger.models import Balance
from exchange.markets.models import Market
from exchange.matching import Side
from exchange.money import BaseUnitsField
from exchange.risk.models import (
    LIMIT_NAMES,
    AccountRiskOverride,
    MarketRiskDefaults,
    TierMarketAllowlist,
)
from exchange.trading.models import Order


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """One account's limits in one market; None means no limit of that kind."""

    max_order_quantity: int | None
    max_order_notional: int | None
    max_open_orders: int | None
    max_daily_notional: int | None
    max_position: int | None
    rate_limit_per_second: int
    rate_limit_burst: int
    kill_switch: bool
    overridden: tuple[str, ...]  # the names whose value comes from the account's override

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in LIMIT_NAMES}


@dataclass(frozen=True, slots=True)
class AccountMarketRisk:
    """Everything the staff API shows for one (account, market)."""

    market: Market
    allowed: bool
    limits: EffectiveLimits
    defaults: MarketRiskDefaults
    override: AccountRiskOverride | None


def market_defaults_get(*, market: Market) -> MarketRiskDefaults:
    """The market's defaults row, or an unsaved one with the field defaults if it has none."""
    defaults = MarketRiskDefaults.objects.filter(market=market).first()
    return defaults if defaults is not None else MarketRiskDefaults(market=market)


def override_get(*, account: Account, market: Market) -> AccountRiskOverride | None:
    return AccountRiskOverride.objects.filter(account=account, market=market).first()


def resolve_limits(
    defaults: MarketRiskDefaults, override: AccountRiskOverride | None
) -> EffectiveLimits:
    overrides = override.values() if override is not None else {}
    values = {name: overrides.get(name, getattr(defaults, name)) for name in LIMIT_NAMES}
    return EffectiveLimits(
        **values,
        kill_switch=defaults.kill_switch,
        overridden=tuple(name for name in LIMIT_NAMES if name in overrides),
    )


def effective_limits(*, account: Account, market: Market) -> EffectiveLimits:
    return resolve_limits(
        market_defaults_get(market=market), override_get(account=account, market=market)
    )


def market_allowed(*, tier: str, market: Market) -> bool:
    return TierMarketAllowlist.objects.filter(tier=tier, market=market).exists()


def account_get_by_address(*, address: str) -> Account | None:
    """The account with this address; a 0x address may be given in any letter case."""
    if is_hex_address(address):
        address = to_checksum_address(address)
    return Account.objects.filter(address=address).first()


def market_get(*, symbol: str) -> Market | None:
    return Market.objects.select_related("base", "quote").filter(symbol=symbol).first()


def account_risk_list(*, account: Account) -> list[AccountMarketRisk]:
    """The account's effective limits in every market, by market symbol (four queries)."""
    markets = list(Market.objects.select_related("base", "quote").order_by("symbol"))
    defaults = {row.market_id: row for row in MarketRiskDefaults.objects.all()}
    overrides = {row.market_id: row for row in AccountRiskOverride.objects.filter(account=account)}
    allowed = set(
        TierMarketAllowlist.objects.filter(tier=account.tier).values_list("market_id", flat=True)
    )
    return [
        _market_risk(
            market, market.pk in allowed, defaults.get(market.pk), overrides.get(market.pk)
        )
        for market in markets
    ]


def account_risk_get(*, account: Account, market: Market) -> AccountMarketRisk:
    return _market_risk(
        market,
        market_allowed(tier=account.tier, market=market),
        MarketRiskDefaults.objects.filter(market=market).first(),
        override_get(account=account, market=market),
    )


def _market_risk(
    market: Market,
    allowed: bool,
    defaults: MarketRiskDefaults | None,
    override: AccountRiskOverride | None,
) -> AccountMarketRisk:
    defaults = defaults if defaults is not None else MarketRiskDefaults(market=market)
    return AccountMarketRisk(
        market=market,
        allowed=allowed,
        limits=resolve_limits(defaults, override),
        defaults=defaults,
        override=override,
    )


def open_order_count(*, account: Account, market: Market) -> int:
    return Order.objects.live().filter(account=account, market=market).count()


def utc_day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def daily_notional(*, account: Account, market: Market, now: datetime) -> int:
    """Quote base units of the orders the account placed in the market since 00:00 UTC.

    "Traded notional" is counted conservatively as placed notional (price x quantity), whatever
    the order became, except orders the engine rejected (they never reached the book). Orders
    without a price (market sells) count as 0.
    """
    day_start = utc_day_start(now)
    total = (
        Order.objects.filter(
            account=account,
            market=market,
            created_at__gte=day_start,
            created_at__lt=day_start + timedelta(days=1),
            price__isnull=False,
        )
        .exclude(status=Order.Status.REJECTED)
        .aggregate(total=Sum(F("price") * F("quantity"), output_field=BaseUnitsField()))["total"]
    )
    # Each order's notional is exact (Market.clean), so one division of the sum loses nothing.
    return (total or 0) // 10**market.base.decimals


def base_exposure(*, account: Account, market: Market) -> int:
    """The account's exposure to the market's base asset, in its base units: balance (available
    plus held) plus the unfilled quantity of open buys in every market with that base asset."""
    balance = Balance.objects.filter(account=account, asset_id=market.base_id).first()
    open_buys = (
        Order.objects.live()
        .filter(account=account, market__base_id=market.base_id, side=Side.BUY.value)
        .aggregate(total=Sum(F("quantity") - F("filled_quantity"), output_field=BaseUnitsField()))[
            "total"
        ]
    )
    return (balance.total if balance is not None else 0) + (open_buys or 0)
