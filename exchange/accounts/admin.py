from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.accounts.models import Account, AuthToken
from exchange.accounts.services import token_revoke


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("address", "kind", "tier", "withdrawals_frozen", "created_at")
    list_filter = ("kind", "tier", "withdrawals_frozen")
    search_fields = ("address",)
    readonly_fields = ("created_at",)
    actions = ("unfreeze_withdrawals",)

    @admin.action(description="Unfreeze withdrawals (resolves the reorgs that froze them)")
    def unfreeze_withdrawals(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        # Through custody's service, so the decision is recorded on the reorg that froze them.
        from exchange.custody.reorgs import account_withdrawals_unfreeze

        actor = f"admin:{request.user.get_username()}"
        accounts = list(queryset.filter(withdrawals_frozen=True))
        for account in accounts:
            account_withdrawals_unfreeze(account=account, actor=actor, note="unfrozen in admin")
        self.message_user(request, f"Unfroze withdrawals of {len(accounts)} account(s).")

    def get_readonly_fields(self, request: HttpRequest, obj: Account | None = None) -> tuple:
        # An account's identity is what the ledger and signatures refer to: never edited.
        if obj is not None:
            return ("address", "kind", "created_at")
        return self.readonly_fields


@admin.register(AuthToken)
class AuthTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("account__address",)
    list_select_related = ("account",)
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens come only from signing in

    def has_change_permission(self, request: HttpRequest, obj: AuthToken | None = None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            token_revoke(token=token)
        self.message_user(request, f"Revoked {len(tokens)} token(s).")
