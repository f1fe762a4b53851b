"""Risk writes and the pre-trade checks the order service and the order API call.

``risk_check_order`` runs inside ``order_place``'s transaction after the account row is locked,
so the open-order count, the daily notional and the exposure it reads cannot change under it
from another request of the same account. It only reads: a rejection raises, the caller's
transaction rolls back, and nothing (order, hold, command) is written.

Checks run in this fixed order; the first breach answers:

1. ``market_kill_switch`` (409)   the market's defaults row has its kill switch on;
2. ``market_not_allowed`` (403)   no allowlist row for the account's tier and the market;
3. ``order_quantity_limit`` (422) quantity > max_order_quantity;
4. ``order_notional_limit`` (422) price x quantity > max_order_notional;
5. ``open_orders_limit`` (422)    open orders in the market + 1 > max_open_orders;
6. ``daily_notional_limit`` (422) today's placed notional (selectors.daily_notional) + this
                                  order's > max_daily_notional;
7. ``position_limit`` (422)       buys only: base exposure (selectors.base_exposure) + quantity
                                  > max_position.

An order without a price (a market sell; a market buy always carries its protection price, which
order_place requires) skips the notional checks 4 and 6 and counts as 0 in later days' sums.

``rate_limit_order`` is separate: the order API calls it first, before any database write, and
copies the returned Decision's headers onto its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.db import transaction

from exchange import ratelimit
from exchange.accounts.models import Account
from exchange.errors import RateLimited, ValidationFailed
from exchange.markets.models import Market
from exchange.matching import Side
from exchange.money import from_base_units
from exchange.risk import selectors
from exchange.risk.errors import (
    DailyNotionalLimit,
    MarketKillSwitch,
    MarketNotAllowed,
    OpenOrdersLimit,
    OrderNotionalLimit,
    OrderQuantityLimit,
    PositionLimit,
)
from exchange.risk.models import (
    LIMIT_NAMES,
    RATE_LIMITS,
    AccountRiskOverride,
    MarketRiskDefaults,
    TierMarketAllowlist,
)

logger = logging.getLogger(__name__)


def _amount_extra(limit: int, decimals: int, symbol: str, **amounts: int) -> dict[str, str]:
    extra = {"limit": from_base_units(limit, decimals), "asset": symbol}
    extra.update({key: from_base_units(value, decimals) for key, value in amounts.items()})
    return extra


def risk_check_order(
    *,
    account: Account,
    market: Market,
    side: str,
    price: int | None,
    quantity: int,
    now: datetime,
) -> None:
    """Raise the first limit this order would breach (see the module docstring); else None."""
    limits = selectors.effective_limits(account=account, market=market)
    if limits.kill_switch:
        raise MarketKillSwitch(
            f"New orders in {market.symbol} are halted.", extra={"market": market.symbol}
        )
    if not selectors.market_allowed(tier=account.tier, market=market):
        raise MarketNotAllowed(
            f"Accounts of tier {account.tier!r} may not trade {market.symbol}.",
            extra={"market": market.symbol, "tier": account.tier},
        )

    base, quote = market.base, market.quote
    if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
        raise OrderQuantityLimit(
            "The order's quantity is above this account's limit.",
            extra=_amount_extra(
                limits.max_order_quantity, base.decimals, base.symbol, requested=quantity
            ),
        )

    notional = market.notional(price, quantity) if price is not None else None
    if (
        notional is not None
        and limits.max_order_notional is not None
        and notional > limits.max_order_notional
    ):
        raise OrderNotionalLimit(
            "The order's notional is above this account's limit.",
            extra=_amount_extra(
                limits.max_order_notional, quote.decimals, quote.symbol, requested=notional
            ),
        )

    if limits.max_open_orders is not None:
        open_orders = selectors.open_order_count(account=account, market=market)
        if open_orders + 1 > limits.max_open_orders:
            raise OpenOrdersLimit(
                f"This account already has {open_orders} open orders in {market.symbol}.",
                extra={"limit": limits.max_open_orders, "current": open_orders},
            )

    if notional is not None and limits.max_daily_notional is not None:
        today = selectors.daily_notional(account=account, market=market, now=now)
        if today + notional > limits.max_daily_notional:
            raise DailyNotionalLimit(
                "The order would take today's (UTC) notional above this account's limit.",
                extra=_amount_extra(
                    limits.max_daily_notional,
                    quote.decimals,
                    quote.symbol,
                    current=today,
                    requested=notional,
                ),
            )

    if side == Side.BUY.value and limits.max_position is not None:
        exposure = selectors.base_exposure(account=account, market=market)
        if exposure + quantity > limits.max_position:
            raise PositionLimit(
                f"The order would take this account's {base.symbol} position above its limit.",
                extra=_amount_extra(
                    limits.max_position,
                    base.decimals,
                    base.symbol,
                    current=exposure,
                    requested=quantity,
                ),
            )


def rate_limit_key(*, account: Account, market: Market) -> str:
    # Addresses and symbols, not ids: stable names that never collide across databases that
    # share one Redis (test runs, restored backups).
    return f"orders:{account.address}:{market.symbol}"


def rate_limit_order(*, account: Account, market: Market) -> ratelimit.Decision:
    """Spend one token of the account's order bucket for this market, or raise RateLimited.

    One token bucket per (account, market), held in Redis and updated atomically by a Lua
    script, so every server process shares it. Rate and burst are the account's effective
    limits (default 10 orders/s, burst 20). On success the view copies ``decision.headers()``
    (X-RateLimit-Limit, X-RateLimit-Remaining) onto its response; the 429 carries
    ``extra.retry_after``, which the exception handler turns into a Retry-After header.
    """
    limits = selectors.effective_limits(account=account, market=market)
    decision = ratelimit.take(
        rate_limit_key(account=account, market=market),
        rate_per_second=limits.rate_limit_per_second,
        burst=limits.rate_limit_burst,
    )
    if not decision.allowed:
        error = RateLimited(
            f"Too many orders: at most {limits.rate_limit_per_second} per second "
            f"(burst {limits.rate_limit_burst}) in {market.symbol}.",
            extra={
                "retry_after": decision.retry_after_seconds,
                "limit": decision.limit,
                "remaining": 0,
            },
        )
        # For an exception handler that copies them (X-RateLimit-* on the 429 as well).
        error.headers = decision.headers()  # type: ignore[attr-defined]
        raise error
    return decision


def _validate_limit(name: str, value: object) -> None:
    if name not in LIMIT_NAMES:
        raise ValidationFailed(f"Unknown limit {name!r}.", extra={"field": name})
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{name} must be an integer or null.", extra={"field": name})
    minimum = 1 if name in RATE_LIMITS else 0
    if value < minimum:
        raise ValidationFailed(f"{name} must be at least {minimum}.", extra={"field": name})


@transaction.atomic
def risk_override_set(
    *,
    account: Account,
    market: Market,
    limits: Mapping[str, int | None],
    actor: str = "",
) -> AccountRiskOverride | None:
    """Set (int) or clear (None) some of the account's overrides in one market; limits not named
    keep their value. Amounts in base units. Returns the row, or None when no override is left
    (the row is then deleted: the account uses the market defaults)."""
    for name, value in limits.items():
        _validate_limit(name, value)
    override, _ = AccountRiskOverride.objects.select_for_update().get_or_create(
        account=account, market=market
    )
    for name, value in limits.items():
        setattr(override, name, value)
    logger.info(
        "risk override %s/%s set by %s: %s", account.address, market.symbol, actor, dict(limits)
    )
    if not override.values():
        override.delete()
        return None
    override.save()
    return override


@transaction.atomic
def market_defaults_ensure(*, market: Market) -> MarketRiskDefaults:
    defaults, _ = MarketRiskDefaults.objects.get_or_create(market=market)
    return defaults


@transaction.atomic
def kill_switch_set(*, market: Market, enabled: bool, actor: str = "") -> MarketRiskDefaults:
    """Halt (or resume) new orders in the market for every account."""
    defaults, _ = MarketRiskDefaults.objects.select_for_update().get_or_create(market=market)
    defaults.kill_switch = enabled
    defaults.save(update_fields=["kill_switch", "updated_at"])
    logger.warning("kill switch for %s %s by %s", market.symbol, "ON" if enabled else "off", actor)
    return defaults


def tier_allow(*, tier: str, market: Market) -> TierMarketAllowlist:
    entry, _ = TierMarketAllowlist.objects.get_or_create(tier=tier, market=market)
    return entry


def tier_disallow(*, tier: str, market: Market) -> bool:
    deleted, _ = TierMarketAllowlist.objects.filter(tier=tier, market=market).delete()
    return bool(deleted)
