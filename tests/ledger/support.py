"""Helpers for the ledger tests."""

from __future__ import annotations

from exchange.accounts.models import Account
from exchange.ledger.models import Balance
from exchange.markets.models import Asset


def balance_of(account: Account, asset: Asset) -> tuple[int, int]:
    """(available, held), (0, 0) for a balance never touched."""
    row = Balance.objects.filter(account=account, asset=asset).first()
    return (row.available, row.held) if row else (0, 0)
