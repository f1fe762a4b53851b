"""Hostile input at the REST edge: every answer is a 4xx with the one error body, never a 500,
and nothing acts on a number that is not in the documented ASCII grammar (docs/API.md)."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from exchange.accounts.services import token_create, trader_get_or_create
from exchange.ledger.models import Balance
from exchange.trading.models import DeadManSwitch, Order
from exchange.withdrawals.models import Withdrawal
from tests.support import DEMO_VAULT, fund

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
# 40 KB of nesting: json.loads recurses once per level and used to raise RecursionError (500).
DEEP = "[" * 20_000 + "]" * 20_000
JSON_WRITES = [
    "/api/v1/auth/login",
    "/api/v1/orders",
    "/api/v1/orders/cancel-after",
    "/api/v1/withdrawals",
    "/api/v1/withdrawal-addresses",
]


def client_address() -> str:
    # Sign-in is rate-limited per address in Redis, which outlives a test.
    host = secrets.randbits(24)
    return f"127.{host >> 16}.{(host >> 8) & 255}.{host & 255}"


@pytest.fixture
def signed_in(market, settings) -> tuple[APIClient, object]:
    settings.VAULT_ADDRESS = DEMO_VAULT
    account = trader_get_or_create(address="0x" + secrets.token_hex(20))
    api = APIClient(REMOTE_ADDR=client_address())
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=account).token}")
    return api, account


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "extra"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


def order_body(**overrides: object) -> dict:
    body = {
        "market": "WETH-USDC", "side": "buy", "type": "limit", "price": "1000",
        "quantity": "0.01", "client_order_id": "c-1", "nonce": "1",
        "expiry": int(time.time()) + 600, "signature": "0x" + "11" * 65,
    }  # fmt: skip
    return {**body, **overrides}


# ------------------------------------------------------------------ 1. numeric grammar
@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "\u0661\u0660\u0660\u0660"), ("quantity", "\uff10.\uff10\uff10\uff11"),
     ("price", "1_000"), ("quantity", " 0.01"), ("price", ".5"), ("quantity", "1.")],
)  # fmt: skip
def test_orders_refuse_numbers_outside_the_ascii_grammar(signed_in, field, value) -> None:
    api, _ = signed_in
    response = api.post("/api/v1/orders", order_body(**{field: value}), format="json")
    body = assert_error(response, 400, "invalid_amount")
    assert body["extra"]["field"] == field
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("nonce", "\u0661"), ("nonce", "1_0"), ("expiry", "\uff11" * 10), ("nonce", True),
     ("nonce", 1.0), ("expiry", "1e10")],
)  # fmt: skip
def test_orders_refuse_integers_outside_the_ascii_grammar(signed_in, field, value) -> None:
    api, _ = signed_in
    response = api.post("/api/v1/orders", order_body(**{field: value}), format="json")
    body = assert_error(response, 400, "invalid_number")
    assert body["extra"]["field"] == field


@pytest.mark.parametrize("amount", ["\u0661", "\uff11", "1_0", "1 ", "+1"])
def test_withdrawals_refuse_amounts_outside_the_ascii_grammar(signed_in, amount) -> None:
    api, account = signed_in
    fund(account.address, "USDC", 100 * USDC)
    body = {"asset": "USDC", "amount": amount, "destination": "0x" + "22" * 20,
            "idempotency_key": "w-1"}  # fmt: skip
    assert_error(api.post("/api/v1/withdrawals", body, format="json"), 400, "invalid_amount")
    assert not Withdrawal.objects.exists()
    balance = Balance.objects.get(account=account, asset__symbol="USDC")
    assert (balance.available, balance.held) == (100 * USDC, 0)


@pytest.mark.parametrize("timeout", ["\u0661", "1_0", "1.0", 1.5, True, "5 ", "5"])
def test_cancel_after_refuses_timeouts_outside_the_grammar(signed_in, timeout) -> None:
    api, _ = signed_in
    response = api.post("/api/v1/orders/cancel-after", {"timeout": timeout}, format="json")
    assert_error(response, 400, "invalid_number")
    assert not DeadManSwitch.objects.exists()


def test_cancel_after_still_takes_json_integers(signed_in) -> None:
    api, _ = signed_in
    assert api.post("/api/v1/orders/cancel-after", {"timeout": 30}, format="json").json()["armed"]
    response = api.post("/api/v1/orders/cancel-after", {"timeout": 0}, format="json")
    assert response.json()["armed"] is False


def test_staff_risk_limits_refuse_numbers_outside_the_grammar(market) -> None:
    staff = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    account = trader_get_or_create(address="0x" + "33" * 20)
    api = APIClient()
    api.force_authenticate(staff)
    url = f"/api/v1/risk/{account.address}/limits"
    for field, value in [("max_order_quantity", "1_0"), ("max_order_notional", "\u0661"),
                         ("max_open_orders", "1_0"), ("rate_limit_burst", "\uff15")]:  # fmt: skip
        response = api.post(url, {"market": "WETH-USDC", field: value}, format="json")
        code = "invalid_amount" if field.startswith("max_order") else "invalid_number"
        assert assert_error(response, 400, code)["extra"]["field"] == field


def test_book_depth_and_page_limit_follow_the_grammar(market) -> None:
    api = APIClient()
    for query in ("depth=\u0661", "depth=1_0", "depth="):
        assert_error(api.get(f"/api/v1/markets/WETH-USDC/book?{query}"), 400, "invalid_number")
    for query in ("limit=\u0661", "limit=1_0", "limit=null", "limit=", "limit=0", "limit=501"):
        response = api.get(f"/api/v1/markets/WETH-USDC/trades?{query}")
        assert_error(response, 400, "invalid_number")
    assert api.get("/api/v1/markets/WETH-USDC/trades?limit=5").status_code == 200


# ------------------------------------------------------------------ 2. the reproduced 500s
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/ledger", "/api/v1/withdrawals",
                                  "/api/v1/fills", "/api/v1/deposits"])  # fmt: skip
def test_a_cursor_with_a_non_numeric_position_is_not_found(signed_in, path) -> None:
    api, _ = signed_in
    assert_error(api.get(path, {"cursor": "cD1hYmM="}), 404, "not_found")


def test_public_trades_with_a_bad_cursor_position_is_not_found(market) -> None:
    response = APIClient().get("/api/v1/markets/WETH-USDC/trades?cursor=cD1hYmM%3D")
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("path", JSON_WRITES)
def test_deeply_nested_json_is_a_malformed_request(signed_in, path) -> None:
    api, _ = signed_in
    response = api.post(path, DEEP, content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_deeply_nested_json_on_the_public_login(market) -> None:
    api = APIClient(REMOTE_ADDR=client_address())
    response = api.post("/api/v1/auth/login", DEEP, content_type="application/json")
    assert_error(response, 400, "malformed_request")


@pytest.mark.parametrize("field", ["side", "type", "time_in_force", "self_trade_prevention"])
def test_a_lone_surrogate_in_a_choice_field_is_refused(signed_in, field) -> None:
    api, _ = signed_in
    raw = json.dumps(order_body(**{field: "\ud800"}))  # ensure_ascii: "\ud800" as an escape
    response = api.post("/api/v1/orders", raw, content_type="application/json")
    assert_error(response, 400)
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/by-client-id/%00",
        "/api/v1/fills/%00/proof",
        "/api/v1/markets/%00",
        "/api/v1/markets/%00/book",
        "/api/v1/markets/a%00b/trades",
    ],
)
def test_a_nul_byte_in_a_path_parameter_is_not_found(signed_in, path) -> None:
    api, _ = signed_in
    assert_error(api.get(path), 404, "not_found")


def test_a_nul_byte_in_the_risk_address_is_not_found(market) -> None:
    staff = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    api = APIClient()
    api.force_authenticate(staff)
    assert_error(api.get("/api/v1/risk/%00"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/orders", "/api/v1/withdrawals", "/api/v1/fills", "/api/v1/ledger",
     "/api/v1/markets/WETH-USDC/trades"],
)  # fmt: skip
def test_options_with_a_token_answers(signed_in, path) -> None:
    api, _ = signed_in
    response = api.options(path)
    assert response.status_code == 200
    assert response.json()["name"]


# ------------------------------------------------------------------ 4. schema and behaviour
@pytest.mark.parametrize(
    "query", ["orders?status=", "orders?market=", "fills?market=", "withdrawals?state=",
              "withdrawals?asset=", "ledger?asset="],
)  # fmt: skip
def test_empty_filters_are_refused_not_ignored(signed_in, query) -> None:
    api, _ = signed_in
    assert_error(api.get(f"/api/v1/{query}"), 400, "validation_error")


def test_cancel_all_with_an_empty_side_is_refused(signed_in) -> None:
    api, _ = signed_in
    assert_error(api.delete("/api/v1/orders?side="), 400, "validation_error")


def test_an_empty_self_trade_prevention_means_the_market_default(signed_in) -> None:
    api, _ = signed_in
    response = api.post("/api/v1/orders", order_body(self_trade_prevention=""), format="json")
    # The signature is junk: reaching its check means the empty value was accepted.
    assert assert_error(response, response.status_code)["code"] in {
        "signature_invalid",
        "signer_mismatch",
    }


def test_an_unknown_market_is_a_documented_404(signed_in) -> None:
    api, _ = signed_in
    response = api.post("/api/v1/orders", order_body(market="NOPE-USDC"), format="json")
    assert_error(response, 404, "market_not_found")
    operation = APIClient().get("/api/schema/?format=json").json()["paths"]["/api/v1/orders"]
    responses = operation["post"]["responses"]
    assert "market_not_found" in responses["404"]["description"]
    assert "market_not_found" not in responses["400"]["description"]


# ------------------------------------------------------------------ 5. JSON errors under /api/
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_paths_answer_the_json_error_body(db, debug) -> None:
    with override_settings(DEBUG=debug):
        for path in ("/api/v1/nope", "/api/nope/", "/api/v1/orders/12/nope"):
            body = assert_error(APIClient().get(path), 404, "not_found")
            assert "urlpatterns" not in json.dumps(body)


# ------------------------------------------------------------------ the public sign-in's parser
@pytest.mark.parametrize(
    "message",
    ["0" * 4000, "a" * 64 + " wants you to sign in with your Ethereum account:\n0x" + "a" * 40
     + "\n\n" + "0" * 3800],
)  # fmt: skip
def test_malformed_sign_in_messages_never_reach_the_slow_parser(monkeypatch, message) -> None:
    # siwe's ABNF parser spent 12 s of CPU on 4,000 "0"s (quadratic backtracking), on a public
    # endpoint: malformed messages must be refused before it runs.
    import siwe.siwe

    from exchange.accounts import errors, signin

    def slow_parser(**kwargs: object) -> None:
        raise AssertionError("the ABNF parser ran on a malformed message")

    monkeypatch.setattr(siwe.siwe, "ABNFParsedMessage", slow_parser)
    with pytest.raises(errors.SiweMalformed):
        signin.parse(message)
