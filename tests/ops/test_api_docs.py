"""The OpenAPI schema documents every endpoint with its shapes and error codes, publicly, and the
shapes it documents are the ones the API really answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import yaml
from django.test import Client

from exchange.client import ApiError, ClearwayClient
from tests.trading.support import drain, worker  # noqa: F401

pytestmark = pytest.mark.django_db

# A floor, so that iterating the schema can never pass by iterating nothing.
TRADER_OPERATIONS = {
    "auth_nonce", "auth_login", "auth_logout", "markets_list", "markets_get", "balances_list",
    "ledger_list", "eip712_order_types", "orders_place", "orders_list", "orders_cancel_all",
    "orders_get", "orders_cancel", "orders_get_by_client_id", "orders_cancel_after", "fills_list",
    "markets_book", "markets_trades", "fill_proof", "deposits_list",
}  # fmt: skip
ERROR_REF = "#/components/schemas/Error"
USDC = 10**6
WETH = 10**18


def schema() -> dict:
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def api_operations(document: dict) -> Iterator[tuple[str, dict]]:
    """("METHOD /path", operation) for every operation under /api/v1/."""
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield f"{method.upper()} {path}", operation


def error_codes(response: dict) -> list[str]:
    """The codes an error response lists: 'Error codes: a, b (when ...).' -> ['a', 'b']."""
    match = re.match(r"Error codes: (.+)\.$", response.get("description", ""))
    return re.findall(r"\b[a-z][a-z0-9_]+\b(?![^(]*\))", match.group(1)) if match else []


def test_schema_and_docs_are_public() -> None:
    assert Client().get("/api/docs/").status_code == 200
    assert schema()["openapi"].startswith("3.")


def test_every_operation_documents_its_success_body() -> None:
    document = schema()
    operations = dict(api_operations(document))
    assert {op["operationId"] for op in operations.values()} >= TRADER_OPERATIONS
    for name, operation in operations.items():
        successes = {code: r for code, r in operation["responses"].items() if code[0] == "2"}
        assert successes, f"{name} documents no success response"
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response, name  # no body, and it says so
                continue
            body = response.get("content", {}).get("application/json", {}).get("schema")
            assert body, f"{name} {code} has no response schema (only a description?)"
            assert "$ref" in body or body.get("type") == "array", f"{name} {code}: {body}"
            if body.get("type") == "array":
                assert "$ref" in body["items"], f"{name} {code}: array of what?"


def test_every_operation_lists_its_error_codes() -> None:
    for name, operation in api_operations(schema()):
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert errors, f"{name} documents no error response"
        for code, response in errors.items():
            assert error_codes(response), f"{name} {code}: {response.get('description')!r}"
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": ERROR_REF}, f"{name} {code} is not the one error body"
        assert error_codes(errors["500"]) == ["server_error"], name
        assert "service_unavailable" in error_codes(errors["503"]), name


def test_every_operation_that_needs_a_token_documents_401_not_authenticated() -> None:
    secured = [
        (name, operation)
        for name, operation in api_operations(schema())
        if {"bearerAuth": []} in operation.get("security", [])
    ]
    assert len(secured) >= 15
    for name, operation in secured:
        assert "401" in operation["responses"], f"{name} does not document 401"
        assert "not_authenticated" in error_codes(operation["responses"]["401"]), name


def test_paginated_lists_are_documented_as_pages_with_cursor_parameters() -> None:
    document = schema()
    components = document["components"]["schemas"]
    by_id = {op["operationId"]: op for _, op in api_operations(document)}
    for operation_id, item in [
        ("orders_list", "Order"),
        ("fills_list", "Fill"),
        ("ledger_list", "LedgerLine"),
        ("deposits_list", "Deposit"),
    ]:
        operation = by_id[operation_id]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = components[ref.rsplit("/", 1)[1]]
        assert set(page["properties"]) == {"next", "previous", "results"}, operation_id
        assert page["properties"]["results"]["items"] == {"$ref": f"#/components/schemas/{item}"}
        parameters = {p["name"] for p in operation.get("parameters", [])}
        assert {"cursor", "limit"} <= parameters, operation_id
    assert {"market", "status"} <= {p["name"] for p in by_id["orders_list"]["parameters"]}


def test_eip712_and_cancel_answers_have_their_own_shapes() -> None:
    document = schema()
    components = document["components"]["schemas"]
    by_id = {op["operationId"]: op for _, op in api_operations(document)}

    def body(operation_id: str, code: str) -> dict:
        response = by_id[operation_id]["responses"][code]
        ref = response["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]

    assert set(body("eip712_order_types", "200")["properties"]) == {
        "domain", "types", "primaryType"
    }  # fmt: skip
    assert set(body("orders_cancel_all", "202")["properties"]) == {"markets"}
    assert set(body("orders_cancel_after", "200")["properties"]) == {"armed", "deadline"}
    place = by_id["orders_place"]
    request = place["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert request.endswith("/OrderPlaceInput")
    assert "insufficient_funds" in error_codes(place["responses"]["409"])


# --------------------------------------------------------------- documented == what is served
def json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: ``nullable`` becomes a null alternative, and objects with
    listed properties allow no others (an undocumented field in an answer fails)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    if "properties" in node:
        out["properties"] = {k: json_schema(v) for k, v in node["properties"].items()}
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.mark.django_db(transaction=True)
def test_real_answers_match_their_documented_schemas(trader, server, worker) -> None:  # noqa: F811
    document = schema()
    by_id = {op["operationId"]: op for _, op in api_operations(document)}
    components = json_schema(document["components"])
    answers: list[tuple[str, int, Any]] = []

    def see(operation_id: str, client: ClearwayClient, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except ApiError:
            result = None
        response = client.last_response
        body = response.json() if response.content else None
        answers.append((operation_id, response.status_code, body))
        return result

    seller, buyer = trader(weth=WETH), trader(usdc=10_000 * USDC)
    see("eip712_order_types", seller, lambda: seller.request("GET", "eip712"))
    see("markets_list", seller, seller.markets)
    see("markets_get", seller, lambda: seller.request("GET", "markets/WETH-USDC"))
    ask = see("orders_place", seller, lambda: seller.place_order(
        "WETH-USDC", "sell", quantity="0.5", price="2000", client_order_id="ask"))  # fmt: skip
    bid = see("orders_place", buyer, lambda: buyer.place_order(
        "WETH-USDC", "buy", quantity="0.2", price="2000"))  # fmt: skip
    see("orders_place", buyer, lambda: buyer.place_order(
        "WETH-USDC", "buy", quantity="100", price="2000"))  # 409 insufficient_funds  # fmt: skip
    assert drain(worker) == 2
    see("orders_list", seller, seller.orders)
    see("orders_list", seller, lambda: seller.orders(status="bogus"))
    see("orders_get", seller, lambda: seller.order(ask["id"]))
    see("orders_get", seller, lambda: seller.order(bid["id"]))  # 404: not the seller's
    see("orders_get_by_client_id", seller, lambda: seller.order_by_client_id("ask"))
    see("fills_list", seller, seller.fills)
    see("fills_list", buyer, buyer.fills)
    see("balances_list", seller, seller.balances)
    see("ledger_list", buyer, buyer.ledger)
    see("orders_cancel_after", seller, lambda: seller.cancel_after(60))
    see("orders_cancel_after", seller, lambda: seller.cancel_after(0))
    see("orders_cancel_after", seller, lambda: seller.cancel_after(-1))
    see("orders_cancel", buyer, lambda: buyer.cancel_order(bid["id"]))  # 409: filled
    see("orders_cancel", seller, lambda: seller.cancel_order(ask["id"]))
    see("orders_cancel_all", seller, seller.cancel_all)
    see("orders_cancel_all", seller, lambda: seller.cancel_all(market="DOGE-USDC"))
    anonymous = ClearwayClient(server)
    see("orders_cancel_all", anonymous, anonymous.cancel_all)
    see("auth_logout", buyer, buyer.logout)

    statuses = {(operation_id, status) for operation_id, status, _ in answers}
    assert statuses >= {
        ("orders_place", 202), ("orders_place", 409), ("orders_list", 200), ("orders_list", 400),
        ("orders_get", 404), ("orders_cancel", 202), ("orders_cancel", 409),
        ("orders_cancel_all", 202), ("orders_cancel_all", 404), ("orders_cancel_all", 401),
        ("orders_cancel_after", 400), ("fills_list", 200), ("ledger_list", 200),
    }  # fmt: skip
    mismatches = []
    for operation_id, status, body in answers:
        documented = by_id[operation_id]["responses"].get(str(status))
        if documented is None:
            mismatches.append(f"{operation_id} answered an undocumented {status}")
            continue
        if status == 204:
            continue
        response_schema = json_schema(documented["content"]["application/json"]["schema"])
        validator = jsonschema.Draft202012Validator({**response_schema, "components": components})
        mismatches += [f"{operation_id} {status}: {e.message}" for e in validator.iter_errors(body)]
        if status >= 400:
            listed = error_codes(documented)
            if body["code"] not in listed:
                mismatches.append(f"{operation_id} {status}: {body['code']} not in {listed}")
    assert mismatches == []
    fills = [body for operation_id, _, body in answers if operation_id == "fills_list"]
    assert all(len(page["results"]) == 1 for page in fills)  # a real trade was validated


# ------------------------------------------- errors raised outside DRF keep the one error body
@pytest.mark.parametrize(
    "path", ["/api/v1/no-such-thing", "/api/v1/orders/not-a-number", "/api/v2/orders", "/api/"]
)
def test_unknown_api_urls_are_404_with_the_error_body(path: str) -> None:
    response = Client().get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": "not_found",
        "message": "No API endpoint at this path.",
        "extra": {},
    }


def test_unknown_urls_outside_the_api_keep_the_html_404() -> None:
    response = Client().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_crash_in_an_api_view_is_500_with_the_error_body_and_no_details(monkeypatch) -> None:
    def crash() -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("exchange.markets.apis._markets", crash)
    response = Client(raise_request_exception=False).get("/api/v1/markets")

    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "message": "An unexpected error occurred.",
        "extra": {},
    }
    assert b"secret internal detail" not in response.content


@pytest.mark.parametrize("down", ["postgres", "redis"])
def test_a_database_outage_in_an_api_view_is_a_503_to_retry(monkeypatch, down: str) -> None:
    # The chaos soak (bench/chaos.py) restarting PostgreSQL or Redis under load got 500s (and,
    # in development, Django's debug page) for requests cut by the restart (Redis: the order
    # rate limiter).
    import redis
    from django.db import OperationalError

    def outage() -> None:
        if down == "redis":
            raise redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("exchange.markets.apis._markets", outage)
    response = Client(raise_request_exception=False).get("/api/v1/markets")

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "code": "service_unavailable",
        "message": "The exchange is briefly unavailable; retry shortly.",
        "extra": {"retry_after": 1},
    }


def test_a_crash_outside_the_api_keeps_the_html_500(monkeypatch) -> None:
    def crash() -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("exchange.ops.views.run_checks", crash)
    response = Client(raise_request_exception=False).get("/readyz")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_disallowed_host_is_400_with_the_error_body(settings) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]

    response = Client().get("/api/v1/markets", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert set(response.json()) == {"code", "message", "extra"}
