from __future__ import annotations

from django.urls import path

from exchange.accounts import apis

urlpatterns = [
    path("auth/nonce", apis.NonceApi.as_view(), name="auth-nonce"),
    path("auth/login", apis.LoginApi.as_view(), name="auth-login"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/whoami", apis.WhoamiApi.as_view(), name="auth-whoami"),
]
