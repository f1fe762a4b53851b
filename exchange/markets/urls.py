from __future__ import annotations

from django.urls import path

from exchange.markets import apis

urlpatterns = [
    path("markets", apis.MarketListApi.as_view(), name="markets"),
    path("markets/<str:symbol>", apis.MarketDetailApi.as_view(), name="market-detail"),
    path("markets/<str:symbol>/book", apis.MarketBookApi.as_view(), name="market-book"),
    path("markets/<str:symbol>/trades", apis.MarketTradeListApi.as_view(), name="market-trades"),
]
