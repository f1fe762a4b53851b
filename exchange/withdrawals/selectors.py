"""Withdrawal reads: a trader's withdrawals, the effective limits, and rolling window sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet, Sum

from exchange.accounts.models import Account
from exchange.markets.models import Asset
from exchange.withdrawals.errors import WithdrawalNotFound
from exchange.withdrawals.models import (
    COUNTED_STATES,
    AccountWithdrawalLimits,
    AssetWithdrawalLimits,
    Withdrawal,
    WithdrawalAddress,
)


def withdrawal_list(
    *, account: Account, state: str | None = None, asset: str | None = None
) -> QuerySet[Withdrawal]:
    rows = Withdrawal.objects.filter(account=account).select_related("asset")
    if state:
        rows = rows.filter(state=state)
    if asset:
        rows = rows.filter(asset__symbol=asset)
    return rows


def withdrawal_get(*, account: Account, withdrawal_id: object) -> Withdrawal:
    found = (
        Withdrawal.objects.select_related("asset").filter(pk=withdrawal_id, account=account).first()
    )
    if found is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id} for this account.")
    return found


def withdrawal_address_list(*, account: Account) -> QuerySet[WithdrawalAddress]:
    return WithdrawalAddress.objects.filter(account=account, removed_at__isnull=True)


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """Base units of one asset; None is no limit."""

    auto_approve_threshold: int
    limit_24h: int | None
    limit_30d: int | None
    exchange_cap_1h: int | None
    exchange_cap_24h: int | None


def effective_limits(
    *, account: Account, asset: Asset, asset_limits: AssetWithdrawalLimits | None = None
) -> EffectiveLimits:
    """The asset's limits (an unsaved default row if it has none) with the account's overrides:
    a non-null override field wins."""
    if asset_limits is None:
        asset_limits = AssetWithdrawalLimits.objects.filter(asset=asset).first()
        if asset_limits is None:
            asset_limits = AssetWithdrawalLimits(asset=asset)
    override = AccountWithdrawalLimits.objects.filter(account=account, asset=asset).first()

    def pick(name: str) -> int | None:
        value = getattr(override, name, None) if override is not None else None
        return value if value is not None else getattr(asset_limits, name)

    return EffectiveLimits(
        auto_approve_threshold=pick("auto_approve_threshold") or 0,
        limit_24h=pick("account_limit_24h"),
        limit_30d=pick("account_limit_30d"),
        exchange_cap_1h=asset_limits.exchange_cap_1h,
        exchange_cap_24h=asset_limits.exchange_cap_24h,
    )


def withdrawn_since(
    *, asset: Asset, since: datetime, account: Account | None = None, auto_only: bool = False
) -> int:
    """Base units of the withdrawals that count against limits, created after ``since``: every
    one not rejected, expired, cancelled or failed (or only automatic ones, for the caps)."""
    rows = Withdrawal.objects.filter(asset=asset, created_at__gt=since, state__in=COUNTED_STATES)
    if account is not None:
        rows = rows.filter(account=account)
    if auto_only:
        rows = rows.filter(auto_approved=True)
    total = rows.aggregate(total=Sum("amount"))["total"]
    return int(total or 0)
