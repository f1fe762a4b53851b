"""Websocket routes; each app adds its consumers here."""

from __future__ import annotations

from django.urls import path

from exchange.realtime.consumers import MarketConsumer, UserConsumer

websocket_urlpatterns: list = [
    path("ws/v1/markets/<str:symbol>", MarketConsumer.as_asgi()),
    path("ws/v1/user", UserConsumer.as_asgi()),
]
