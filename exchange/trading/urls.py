from __future__ import annotations

from django.urls import path

from exchange.trading import apis

urlpatterns = [
    path("eip712", apis.Eip712Api.as_view(), name="eip712"),
    path("orders", apis.OrderCollectionApi.as_view(), name="orders"),
    path("orders/cancel-after", apis.CancelAfterApi.as_view(), name="orders-cancel-after"),
    path("orders/by-client-id/<str:client_order_id>", apis.OrderByClientIdApi.as_view(),
         name="order-by-client-id"),
    path("orders/<int:order_id>", apis.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<int:order_id>/replace", apis.OrderReplaceApi.as_view(), name="order-replace"),
    path("fills", apis.FillListApi.as_view(), name="fills"),
]  # fmt: skip
