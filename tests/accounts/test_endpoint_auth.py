"""Every endpoint that acts for a trader (or staff) refuses a request without a valid token,
whatever its method, before it reads the body or touches anything."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

# (method, path template) of every operation that needs a bearer token (or a staff session).
TOKEN_ENDPOINTS = [
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/whoami"),
    ("get", "/api/v1/balances"),
    ("get", "/api/v1/ledger"),
    ("get", "/api/v1/orders"),
    ("post", "/api/v1/orders"),
    ("delete", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("delete", "/api/v1/orders/{order_id}"),
    ("get", "/api/v1/orders/by-client-id/{client_order_id}"),
    ("delete", "/api/v1/orders/by-client-id/{client_order_id}"),
    ("post", "/api/v1/orders/{order_id}/replace"),
    ("post", "/api/v1/orders/cancel-after"),
    ("get", "/api/v1/fills"),
    ("get", "/api/v1/fills/{trade_id}/proof"),
    ("get", "/api/v1/deposits"),
    ("get", "/api/v1/withdrawals"),
    ("post", "/api/v1/withdrawals"),
    ("get", "/api/v1/withdrawals/{withdrawal_id}"),
    ("delete", "/api/v1/withdrawals/{withdrawal_id}"),
    ("get", "/api/v1/withdrawal-addresses"),
    ("post", "/api/v1/withdrawal-addresses"),
    ("delete", "/api/v1/withdrawal-addresses/{address_id}"),
    ("get", "/api/v1/risk/{address}"),
    ("post", "/api/v1/risk/{address}/limits"),
    ("get", "/api/v1/alerts"),
    ("post", "/api/v1/alerts/{alert_id}/resolve"),
]

SAMPLE_PARAMETERS = {
    "order_id": "1",
    "client_order_id": "c-1",
    "trade_id": "WETH-USDC-2-1",
    "withdrawal_id": str(uuid.UUID(int=1)),
    "address_id": "1",
    "alert_id": "1",
    "address": "0x52908400098527886E0F7030069857D2E4169EE7",
}


def call(client: APIClient, method: str, template: str):  # type: ignore[no-untyped-def]
    path = template.format(**SAMPLE_PARAMETERS)
    if method == "get":
        return client.get(path)
    # A body that would be valid JSON for any of them: refusal must come before validation.
    return client.generic(method.upper(), path, json.dumps({}), content_type="application/json")


@pytest.mark.parametrize(("method", "template"), TOKEN_ENDPOINTS)
def test_no_token_is_401_not_authenticated(method: str, template: str) -> None:
    response = call(APIClient(), method, template)

    assert response.status_code == 401, response.content
    assert response.json() == {
        "code": "not_authenticated",
        "message": response.json()["message"],
        "extra": {},
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "template"), TOKEN_ENDPOINTS)
def test_a_token_we_never_issued_is_401_token_invalid(method: str, template: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer cw_not-a-token-we-issued")

    response = call(client, method, template)

    assert response.status_code == 401, response.content
    assert response.json()["code"] == "token_invalid"


def test_the_table_is_every_operation_the_schema_secures_with_a_token() -> None:
    """A new endpoint that needs a token must be added above: the table cannot rot."""
    schema = json.loads(Client().get("/api/schema/", {"format": "json"}).content)
    secured = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and {"bearerAuth": []} in operation.get("security", [])
    }
    assert secured == set(TOKEN_ENDPOINTS)
