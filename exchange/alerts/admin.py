"""Alerts in the admin: read-only (Alertmanager writes them); resolving goes through the API,
which also silences the alert in Alertmanager."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from exchange.alerts.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "alertname", "severity", "status", "starts_at", "ends_at", "resolved_by", "resolved_at",
    )  # fmt: skip
    list_filter = ("status", "severity", "alertname", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("alertname", "fingerprint", "resolution_note")
    date_hierarchy = "starts_at"
    readonly_fields = [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False
