"""Markets created before the risk app get what signals.py gives every new market: a defaults
row and an allowlist entry for the default tier, so turning the risk engine on (deny by default)
does not close existing markets to standard accounts."""

from __future__ import annotations

from django.db import migrations

DEFAULT_TIER = "standard"  # exchange.accounts.models.DEFAULT_TIER when this was written


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    Market = apps.get_model("markets", "Market")
    MarketRiskDefaults = apps.get_model("risk", "MarketRiskDefaults")
    TierMarketAllowlist = apps.get_model("risk", "TierMarketAllowlist")
    for market in Market.objects.all():
        MarketRiskDefaults.objects.get_or_create(market=market)
        TierMarketAllowlist.objects.get_or_create(tier=DEFAULT_TIER, market=market)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
