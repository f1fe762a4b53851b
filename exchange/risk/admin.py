"""Risk limits in the admin. Amounts are base units here (see each field's help text)."""

from __future__ import annotations

from django.contrib import admin

from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults, TierMarketAllowlist


@admin.register(MarketRiskDefaults)
class MarketRiskDefaultsAdmin(admin.ModelAdmin):
    list_display = (
        "market", "kill_switch", "max_order_quantity", "max_order_notional", "max_open_orders",
        "max_daily_notional", "max_position", "rate_limit_per_second", "rate_limit_burst",
        "updated_at",
    )  # fmt: skip
    list_editable = ("kill_switch",)
    list_filter = ("kill_switch",)
    search_fields = ("market__symbol",)
    list_select_related = ("market",)
    readonly_fields = ("updated_at",)


@admin.register(AccountRiskOverride)
class AccountRiskOverrideAdmin(admin.ModelAdmin):
    list_display = (
        "account", "market", "max_order_quantity", "max_order_notional", "max_open_orders",
        "max_daily_notional", "max_position", "rate_limit_per_second", "rate_limit_burst",
        "updated_at",
    )  # fmt: skip
    list_filter = ("market",)
    search_fields = ("account__address", "market__symbol")
    list_select_related = ("account", "market")
    autocomplete_fields = ("account",)
    readonly_fields = ("updated_at",)


@admin.register(TierMarketAllowlist)
class TierMarketAllowlistAdmin(admin.ModelAdmin):
    list_display = ("tier", "market", "created_at")
    list_filter = ("tier", "market")
    search_fields = ("tier", "market__symbol")
    list_select_related = ("market",)
