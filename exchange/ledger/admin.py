"""Read-only views of the ledger: it changes only through exchange.ledger.services."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from exchange.ledger.models import Balance, JournalEntry, JournalLine


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Balance)
class BalanceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("account", "asset", "available", "held", "is_system", "updated_at")
    list_filter = ("asset", "is_system")
    search_fields = ("account__address",)
    list_select_related = ("account", "asset")


class JournalLineInline(ReadOnlyMixin, admin.TabularInline):
    model = JournalLine
    fields = ("account", "asset", "bucket", "amount")
    readonly_fields = fields
    extra = 0
    ordering = ("id",)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "kind", "reference", "created_at")
    list_filter = ("kind",)
    search_fields = ("reference",)
    date_hierarchy = "created_at"
    inlines = (JournalLineInline,)
