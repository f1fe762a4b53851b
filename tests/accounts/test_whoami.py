"""GET /api/v1/auth/whoami: the cheapest authenticated answer (the load test's ceiling)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.accounts.conftest import Wallet, fetch_nonce
from tests.accounts.test_login import login

pytestmark = pytest.mark.django_db


def test_whoami_names_the_signed_in_address(api: APIClient, wallet: Wallet) -> None:
    message = wallet.message(fetch_nonce(api))
    token = login(api, message, wallet.sign(message)).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.get("/api/v1/auth/whoami")

    assert response.status_code == 200
    assert response.json() == {"address": wallet.address}


def test_whoami_without_a_token_is_401(api: APIClient) -> None:
    response = api.get("/api/v1/auth/whoami")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
