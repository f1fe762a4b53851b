"""Settlement batches, deposits and reorgs, read-only: they change through exchange.custody's
settlement, deposits and reorgs services (driven by the Temporal workflows), each batch linking to
its workflow in the Temporal UI. The one thing an operator does here is record a decision on a
reorg that removed credited deposits (which froze the depositors' withdrawals)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from exchange.custody import reorgs
from exchange.custody.chain import setting
from exchange.custody.models import (
    BatchTrade,
    ChainCursor,
    ChainReorg,
    Deposit,
    ProcessedBlock,
    SettlementBatch,
)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def workflow_url(batch: SettlementBatch) -> str:
    prefix = setting("TEMPORAL_WORKFLOW_ID_PREFIX", "")
    return (
        f"{settings.TEMPORAL_UI_URL.rstrip('/')}/namespaces/{settings.TEMPORAL_NAMESPACE}"
        f"/workflows/{prefix}settlement-batch-{batch.batch_id}"
    )


class BatchTradeInline(ReadOnlyMixin, admin.TabularInline):
    model = BatchTrade
    fields = ("trade",)
    readonly_fields = fields
    extra = 0
    show_change_link = False


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "batch_id",
        "status",
        "trade_count",
        "confirmations",
        "attempts",
        "block_number",
        "created_at",
        "confirmed_at",
        "workflow",
    )
    list_filter = ("status", "vault")
    search_fields = ("=batch_id", "tx_hash", "trades_root")
    date_hierarchy = "created_at"
    readonly_fields = ("workflow",)
    inlines = (BatchTradeInline,)

    @admin.display(description="Temporal workflow")
    def workflow(self, batch: SettlementBatch) -> str:
        return format_html('<a href="{}" target="_blank">{}</a>', workflow_url(batch), "open")


@admin.register(Deposit)
class DepositAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "account",
        "asset",
        "amount",
        "status",
        "confirmations",
        "block_number",
        "tx_hash",
        "credited_at",
    )
    list_filter = ("status", "asset")
    search_fields = ("tx_hash", "depositor", "account__address")
    list_select_related = ("account", "asset")
    date_hierarchy = "created_at"


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("vault", "chain_id", "block_number", "block_hash", "updated_at")


@admin.register(ProcessedBlock)
class ProcessedBlockAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("number", "hash", "parent_hash", "cursor", "processed_at")
    list_filter = ("cursor",)
    search_fields = ("=number", "hash")


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("no", "Unresolved"), ("yes", "Resolved")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(ChainReorg)
class ChainReorgAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "detected_at",
        "depth",
        "ancestor_number",
        "deposits_orphaned",
        "credited_removed",
        "frozen_accounts",
        "resolved_at",
        "resolved_by",
    )
    list_filter = (ResolvedFilter, "depth")
    search_fields = ("=ancestor_number", "ancestor_hash")
    date_hierarchy = "detected_at"
    actions = ("resolve_and_unfreeze", "resolve_keep_frozen")

    @admin.display(description="credited deposits removed")
    def credited_removed(self, reorg: ChainReorg) -> int:
        return len(reorg.credited_deposits)

    def _resolve(self, request: HttpRequest, queryset: QuerySet, *, unfreeze: bool) -> None:
        actor = f"admin:{request.user.get_username()}"
        note = "unfrozen" if unfreeze else "accounts kept frozen"
        for reorg in queryset:
            reorgs.reorg_resolve(reorg=reorg, actor=actor, note=note, unfreeze=unfreeze)
        self.message_user(request, f"Recorded the decision on {queryset.count()} reorg(s).",
                          messages.SUCCESS)  # fmt: skip

    @admin.action(description="Resolve: loss accepted, unfreeze the accounts' withdrawals")
    def resolve_and_unfreeze(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, unfreeze=True)

    @admin.action(description="Resolve: keep the accounts' withdrawals frozen")
    def resolve_keep_frozen(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, unfreeze=False)
