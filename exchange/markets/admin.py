from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.markets.models import Asset, Market


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "name", "decimals", "token_address")
    search_fields = ("symbol", "name", "token_address")


def _set_status(
    admin_view: MarketAdmin,
    request: HttpRequest,
    queryset: QuerySet[Market],
    *,
    from_status: str,
    to_status: str,
) -> None:
    changed = []
    for market in queryset.filter(status=from_status).order_by("pk"):
        market.status = to_status
        # save() (not queryset.update) so post_save receivers see the change, and one admin
        # log entry per market records who halted or reopened it.
        market.save(update_fields=["status"])
        admin_view.log_change(request, market, f"Status {from_status} -> {to_status}.")
        changed.append(market.symbol)
    if changed:
        admin_view.message_user(request, f"{to_status.capitalize()}: {', '.join(changed)}.")
    else:
        admin_view.message_user(
            request, f"No selected market was {from_status}; nothing changed.", messages.WARNING
        )


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = (
        "symbol", "status", "tick_size", "lot_size", "maker_fee_bps", "taker_fee_bps", "default_stp"
    )  # fmt: skip
    list_filter = ("status",)
    search_fields = ("symbol",)
    list_editable = ("status",)
    actions = ("halt_markets", "reopen_markets")

    @admin.action(
        description="Halt selected open markets (refuse new orders)", permissions=["change"]
    )
    def halt_markets(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        # Only open markets: a closed market must not come back to life as "halted".
        _set_status(
            self, request, queryset, from_status=Market.Status.OPEN, to_status=Market.Status.HALTED
        )

    @admin.action(description="Reopen selected halted markets", permissions=["change"])
    def reopen_markets(self, request: HttpRequest, queryset: QuerySet[Market]) -> None:
        _set_status(
            self, request, queryset, from_status=Market.Status.HALTED, to_status=Market.Status.OPEN
        )
