"""The withdrawal endpoints: shapes, status codes and the documented error codes. The services
behind them are tested in test_services; no workflow starts here (nothing commits)."""

from __future__ import annotations

import pytest
from django.test import Client

from exchange.accounts.services import token_create
from exchange.withdrawals import services
from exchange.withdrawals.models import Withdrawal

from .support import USDC, credit, new_address, set_limits

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(trader, usdc) -> Client:  # type: ignore[no-untyped-def]
    credit(trader, usdc, 400 * USDC)
    set_limits(usdc, auto_approve_threshold=100 * USDC, account_limit_24h=500 * USDC)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(account=trader).token}")


def post(api: Client, **overrides: str):  # type: ignore[no-untyped-def]
    body = {"asset": "USDC", "amount": "12.5", "destination": new_address(),
            "idempotency_key": "key-1", **overrides}  # fmt: skip
    return api.post("/api/v1/withdrawals", body, content_type="application/json")


def test_request_then_read_it_back(api, trader):
    destination = new_address()
    response = post(api, destination=destination.lower())

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": body["id"], "asset": "USDC", "amount": "12.5", "destination": destination,
        "idempotency_key": "key-1", "state": "approved", "hold_status": "held",
        "approval_reasons": [], "approval_deadline": None, "tx_hash": None,
        "block_number": None, "confirmations": 0, "created_at": body["created_at"],
        "updated_at": body["updated_at"], "completed_at": None,
    }  # fmt: skip
    assert api.get(f"/api/v1/withdrawals/{body['id']}").json() == body
    listing = api.get("/api/v1/withdrawals").json()
    assert [item["id"] for item in listing["results"]] == [body["id"]]
    assert api.get("/api/v1/withdrawals?state=confirmed").json()["results"] == []


def test_an_idempotent_retry_answers_200_with_the_first(api):
    destination = new_address()
    first = post(api, destination=destination)
    again = post(api, destination=destination)
    other = post(api, destination=destination, amount="13")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"amount": "0"}, 400, "amount_not_positive"),
        ({"amount": "1.0000001"}, 400, "invalid_amount"),
        ({"amount": "-1"}, 400, "amount_not_positive"),
        ({"amount": "-5"}, 400, "amount_not_positive"),
        ({"amount": "-0.0"}, 400, "amount_not_positive"),
        ({"amount": "0.000"}, 400, "amount_not_positive"),
        ({"amount": "five"}, 400, "invalid_amount"),
        ({"destination": "0xnope"}, 400, "invalid_destination"),
        ({"idempotency_key": "has spaces"}, 400, "validation_error"),
        ({"asset": "DOGE"}, 404, "asset_not_found"),
        ({"amount": "400.01"}, 409, "insufficient_funds"),
        ({"amount": "500.000001"}, 422, "withdrawal_limit_24h"),
    ],
)
def test_errors_have_stable_codes(api, overrides, status, code):
    response = post(api, **overrides)

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert set(response.json()) == {"code", "message", "extra"}
    assert not Withdrawal.objects.exists()


def test_a_frozen_account_gets_403(api, trader):
    trader.withdrawals_frozen = True
    trader.save()
    response = post(api)
    assert (response.status_code, response.json()["code"]) == (403, "withdrawals_frozen")


def test_limit_errors_say_how_much_is_left(api):
    assert post(api, amount="100", idempotency_key="a").status_code == 201
    response = post(api, amount="450", idempotency_key="b")
    assert response.status_code == 422
    assert response.json()["extra"] == {
        "asset": "USDC", "limit": "500", "used": "100", "requested": "450", "remaining": "400",
    }  # fmt: skip


def test_cancel(api, trader, make_trader):
    waiting = post(api, amount="200", idempotency_key="big").json()
    automatic = post(api, amount="5", idempotency_key="small").json()
    assert waiting["state"] == "pending_approval"
    assert waiting["approval_reasons"] == ["above_threshold"]
    assert waiting["approval_deadline"] is not None

    refused = api.delete(f"/api/v1/withdrawals/{automatic['id']}")
    cancelled = api.delete(f"/api/v1/withdrawals/{waiting['id']}")
    other = Client(HTTP_AUTHORIZATION=f"Bearer {token_create(account=make_trader()).token}")

    assert (refused.status_code, refused.json()["code"]) == (409, "withdrawal_not_cancellable")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    hidden = other.get(f"/api/v1/withdrawals/{waiting['id']}")
    assert (hidden.status_code, hidden.json()["code"]) == (404, "withdrawal_not_found")
    assert other.delete(f"/api/v1/withdrawals/{waiting['id']}").status_code == 404


def test_signed_out_requests_are_refused(db):
    response = Client().post("/api/v1/withdrawals", {}, content_type="application/json")
    assert response.status_code == 401


def test_allowlisted_addresses(api, trader):
    address = new_address()
    added = api.post(
        "/api/v1/withdrawal-addresses", {"address": address, "label": "cold"},
        content_type="application/json",
    )  # fmt: skip
    assert added.status_code == 201
    entry = added.json()
    assert (entry["address"], entry["label"]) == (address, "cold")
    again = api.post(
        "/api/v1/withdrawal-addresses", {"address": address}, content_type="application/json"
    )
    assert again.status_code == 409 and again.json()["code"] == "withdrawal_address_exists"
    assert [e["id"] for e in api.get("/api/v1/withdrawal-addresses").json()] == [entry["id"]]

    other = post(api)
    cooling = post(api, destination=address, idempotency_key="k2")
    assert (other.status_code, other.json()["code"]) == (403, "destination_not_allowlisted")
    assert (cooling.status_code, cooling.json()["code"]) == (403, "destination_cooling_off")

    assert api.delete(f"/api/v1/withdrawal-addresses/{entry['id']}").status_code == 204
    assert api.get("/api/v1/withdrawal-addresses").json() == []
    gone = api.delete(f"/api/v1/withdrawal-addresses/{entry['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "withdrawal_address_not_found")


def test_the_schema_documents_the_withdrawal_operations(db):
    import yaml

    schema = yaml.safe_load(Client().get("/api/schema/").content)
    operations = {
        op["operationId"]: op
        for path in schema["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    }
    request = operations["withdrawals_request"]
    for status, codes in services_errors().items():
        described = request["responses"][str(status)]["description"]
        assert all(code in described for code in codes), (status, described)
    assert (
        "withdrawal_not_cancellable"
        in operations["withdrawals_cancel"]["responses"]["409"]["description"]
    )
    for name in ("withdrawals_list", "withdrawals_get", "withdrawal_addresses_add",
                 "withdrawal_addresses_list", "withdrawal_addresses_remove"):  # fmt: skip
        assert name in operations


def services_errors() -> dict[int, tuple[str, ...]]:
    from exchange.withdrawals.errors import REQUEST_ERRORS

    return REQUEST_ERRORS


def test_the_service_refuses_what_the_api_refuses(trader, usdc):
    with pytest.raises(TypeError):
        services.withdrawal_request(
            account=trader,
            request=services.WithdrawalRequest("USDC", "1", new_address(), "k"),  # type: ignore[arg-type]
        )
