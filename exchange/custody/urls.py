from __future__ import annotations

from django.urls import path

from exchange.custody import apis

urlpatterns = [
    path("fills/<str:trade_id>/proof", apis.FillProofApi.as_view(), name="fill-proof"),
    path("deposits", apis.DepositListApi.as_view(), name="deposits"),
]
