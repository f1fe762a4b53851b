from django.contrib import admin

from exchange.markets.models import Asset, Market


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "decimals", "token_address")
    search_fields = ("symbol", "name", "token_address")


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = (
        "symbol", "status", "tick_size", "lot_size", "maker_fee_bps", "taker_fee_bps", "default_stp"
    )  # fmt: skip
    list_filter = ("status",)
    search_fields = ("symbol",)
    list_editable = ("status",)
