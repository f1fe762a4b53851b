"""Withdrawals in the admin: the approval queue (filter "Awaiting approval"), approve and reject
actions that record the decision and signal the workflow, each withdrawal linking to its workflow
in the Temporal UI; limits per asset (with the circuit breaker) and per account."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from exchange.money import from_base_units
from exchange.withdrawals import services, temporal
from exchange.withdrawals.models import (
    AccountWithdrawalLimits,
    AssetWithdrawalLimits,
    Withdrawal,
    WithdrawalAddress,
    WithdrawalTransition,
)

State = Withdrawal.State


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [
            ("awaiting", "Awaiting approval"),
            ("in_flight", "Being paid"),
            ("done", "Finished"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        groups = {
            "awaiting": (State.PENDING_APPROVAL,),
            "in_flight": (State.APPROVED, State.PAYING, State.SUBMITTED),
            "done": (State.CONFIRMED, State.REJECTED, State.EXPIRED, State.CANCELLED, State.FAILED),
        }
        if self.value() in groups:
            return queryset.filter(state__in=groups[self.value()])
        return queryset


class TransitionInline(admin.TabularInline):
    model = WithdrawalTransition
    fields = ("at", "from_state", "to_state", "actor", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    list_display = (
        "id", "account", "asset", "amount_display", "state", "hold_status", "reasons",
        "approval_deadline", "created_at", "confirmations", "workflow",
    )  # fmt: skip
    list_filter = (QueueFilter, "state", "asset", "auto_approved", "hold_status")
    search_fields = ("=id", "account__address", "destination", "tx_hash")
    list_select_related = ("account", "asset")
    date_hierarchy = "created_at"
    actions = ("approve", "reject")
    inlines = (TransitionInline,)
    readonly_fields = ("workflow", "amount_display")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # withdrawals come from traders

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # they change through decisions and the workflow, never by hand

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("withdrawals.change_withdrawal")

    @admin.display(description="amount")
    def amount_display(self, withdrawal: Withdrawal) -> str:
        amount = from_base_units(int(withdrawal.amount), withdrawal.asset.decimals)
        return f"{amount} {withdrawal.asset.symbol}"

    @admin.display(description="waits because")
    def reasons(self, withdrawal: Withdrawal) -> str:
        return ", ".join(withdrawal.approval_reasons) or "-"

    @admin.display(description="Temporal workflow")
    def workflow(self, withdrawal: Withdrawal) -> str:
        return format_html(
            '<a href="{}" target="_blank">{}</a>', temporal.workflow_url(withdrawal), "open"
        )

    def _decide(self, request: HttpRequest, queryset: QuerySet, action: str) -> None:
        decide = services.withdrawal_approve if action == "approve" else services.withdrawal_reject
        done, skipped, unsignalled = 0, [], []
        actor = f"admin:{request.user.get_username()}"
        for withdrawal_id in queryset.values_list("id", flat=True):
            decided = decide(withdrawal_id=withdrawal_id, actor=actor)
            target = services.DECISION_TARGETS[action]
            if decided.withdrawal.state != target or decided.withdrawal.auto_approved:
                skipped.append(f"{withdrawal_id} ({decided.withdrawal.state})")
                continue
            done += 1
            if False in decided.signalled:
                unsignalled.append(str(withdrawal_id))
        verb = "Approved" if action == "approve" else "Rejected"
        self.message_user(request, f"{verb} {done} withdrawal(s).")
        if skipped:
            self.message_user(
                request, "Not awaiting approval, left as they are: " + ", ".join(skipped),
                level=messages.WARNING,
            )  # fmt: skip
        if unsignalled:
            self.message_user(
                request,
                "Recorded, but Temporal could not be told (run the action again, or "
                "manage.py withdrawals_resume): " + ", ".join(unsignalled),
                level=messages.ERROR,
            )

    @admin.action(description="Approve selected withdrawals", permissions=("decide",))
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "approve")

    @admin.action(description="Reject selected withdrawals", permissions=("decide",))
    def reject(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._decide(request, queryset, "reject")


@admin.register(AssetWithdrawalLimits)
class AssetWithdrawalLimitsAdmin(admin.ModelAdmin):
    list_display = (
        "asset", "auto_approve_threshold", "account_limit_24h", "account_limit_30d",
        "exchange_cap_1h", "exchange_cap_24h", "breaker_tripped_at", "breaker_reason",
        "updated_at",
    )  # fmt: skip
    list_select_related = ("asset",)
    readonly_fields = ("breaker_tripped_at", "breaker_reason", "updated_at")
    actions = ("reset_breaker",)

    @admin.action(description="Reset the circuit breaker (resume automatic payouts)")
    def reset_breaker(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = f"admin:{request.user.get_username()}"
        rows = list(queryset.select_related("asset"))
        for row in rows:
            services.breaker_reset(asset=row.asset, actor=actor)
        self.message_user(request, f"Reset the circuit breaker of {len(rows)} asset(s).")


@admin.register(AccountWithdrawalLimits)
class AccountWithdrawalLimitsAdmin(admin.ModelAdmin):
    list_display = (
        "account", "asset", "auto_approve_threshold", "account_limit_24h", "account_limit_30d",
        "updated_at",
    )  # fmt: skip
    list_filter = ("asset",)
    search_fields = ("account__address",)
    list_select_related = ("account", "asset")
    autocomplete_fields = ("account",)
    readonly_fields = ("updated_at",)


@admin.register(WithdrawalAddress)
class WithdrawalAddressAdmin(admin.ModelAdmin):
    list_display = ("account", "address", "label", "created_at", "usable_from", "removed_at")
    search_fields = ("account__address", "address")
    list_select_related = ("account",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
