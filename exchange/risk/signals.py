"""Every new market gets its risk defaults row and is allowlisted for the default tier.

The allowlist itself stays deny by default (see models.py): this only opens a new market to
accounts of tier "standard", as the demo and most deployments want; other tiers need a row, and
deleting this one closes the market to standard accounts.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from exchange.accounts.models import DEFAULT_TIER
from exchange.markets.models import Market

AUTO_ALLOWED_TIERS = (DEFAULT_TIER,)


@receiver(post_save, sender=Market, dispatch_uid="risk_market_created")
def market_created(
    sender: type[Market], instance: Market, created: bool, raw: bool, **_: Any
) -> None:
    if not created or raw:  # raw: loaddata restores the risk rows from the same fixture
        return
    from exchange.risk.services import market_defaults_ensure, tier_allow

    market_defaults_ensure(market=instance)
    for tier in AUTO_ALLOWED_TIERS:
        tier_allow(tier=tier, market=instance)
