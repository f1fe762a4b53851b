from __future__ import annotations

from django.urls import path

from exchange.risk import apis

urlpatterns = [
    path("risk/<str:address>", apis.AccountRiskApi.as_view(), name="risk-account"),
    path("risk/<str:address>/limits", apis.AccountRiskLimitsApi.as_view(), name="risk-limits"),
]
