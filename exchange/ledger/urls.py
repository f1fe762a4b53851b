from __future__ import annotations

from django.urls import path

from exchange.ledger import apis

urlpatterns = [
    path("balances", apis.BalanceListApi.as_view(), name="balances"),
    path("ledger", apis.JournalLineListApi.as_view(), name="ledger"),
]
