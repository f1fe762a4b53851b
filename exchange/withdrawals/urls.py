from __future__ import annotations

from django.urls import path

from exchange.withdrawals import apis

urlpatterns = [
    path("withdrawals", apis.WithdrawalCollectionApi.as_view(), name="withdrawals"),
    path("withdrawals/<uuid:withdrawal_id>", apis.WithdrawalDetailApi.as_view(),
         name="withdrawal-detail"),
    path("withdrawal-addresses", apis.WithdrawalAddressCollectionApi.as_view(),
         name="withdrawal-addresses"),
    path("withdrawal-addresses/<int:address_id>", apis.WithdrawalAddressDetailApi.as_view(),
         name="withdrawal-address-detail"),
]  # fmt: skip
