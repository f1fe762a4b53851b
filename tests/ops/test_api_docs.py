"""The OpenAPI schema documents every endpoint with its shapes and error codes, publicly."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db

TRADER_OPERATIONS = {
    "auth_nonce", "auth_login", "auth_logout", "markets_list", "markets_get", "balances_list",
    "ledger_list", "eip712_order_types", "orders_place", "orders_list", "orders_cancel_all",
    "orders_get", "orders_cancel", "orders_get_by_client_id", "orders_cancel_after", "fills_list",
    "markets_book", "markets_trades", "fill_proof", "deposits_list",
}  # fmt: skip


def schema() -> dict:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_and_docs_are_public() -> None:
    assert Client().get("/api/docs/").status_code == 200
    assert schema()["openapi"].startswith("3.")


def test_every_trader_operation_is_documented_with_error_codes() -> None:
    operations = {
        op["operationId"]: op
        for path in schema()["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert set(operations) >= TRADER_OPERATIONS
    for name in TRADER_OPERATIONS:
        op = operations[name]
        assert "200" in op["responses"] or "202" in op["responses"] or "204" in op["responses"]
        errors = [r for code, r in op["responses"].items() if code.startswith(("4", "5"))]
        if name not in {"markets_list", "auth_nonce"}:
            assert errors, f"{name} documents no error response"
            assert all("Error codes:" in r["description"] for r in errors), name
    place = operations["orders_place"]
    body = place["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/OrderPlaceInput")
    assert "insufficient_funds" in place["responses"]["409"]["description"]
