from __future__ import annotations

from django.urls import path

from exchange.alerts import apis

urlpatterns = [
    path("alerts", apis.AlertListApi.as_view(), name="alerts-list"),
    path("alerts/webhook", apis.AlertWebhookApi.as_view(), name="alerts-webhook"),
    path("alerts/<int:alert_id>/resolve", apis.AlertResolveApi.as_view(), name="alerts-resolve"),
]
