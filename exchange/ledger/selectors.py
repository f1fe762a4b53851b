"""Ledger reads."""

from __future__ import annotations

from django.db.models import QuerySet

from exchange.accounts.models import Account
from exchange.ledger.models import Balance, JournalLine


def balance_list(*, account: Account) -> QuerySet[Balance]:
    """An account's balances, one per asset it ever touched, by asset symbol."""
    return Balance.objects.filter(account=account).select_related("asset").order_by("asset__symbol")


def balance_get(*, account_id: int, asset_id: int) -> Balance | None:
    """One balance, unlocked (services lock what they change); None if never touched."""
    return Balance.objects.filter(account_id=account_id, asset_id=asset_id).first()


def journal_line_list(
    *, account: Account, asset_symbol: str | None = None
) -> QuerySet[JournalLine]:
    """An account's journal lines, newest first, with their entry and asset."""
    lines = JournalLine.objects.filter(account=account).select_related("entry", "asset")
    if asset_symbol:
        lines = lines.filter(asset__symbol=asset_symbol)
    return lines.order_by("-id")
