from __future__ import annotations

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from exchange.accounts import errors
from exchange.accounts.authentication import aauthenticate_token
from exchange.accounts.models import SYSTEM_ACCOUNTS, SYSTEM_FEES, Account, AuthToken
from exchange.accounts.selectors import account_by_address, token_authenticate
from exchange.accounts.services import (
    system_account,
    token_create,
    trader_get_or_create,
)

pytestmark = pytest.mark.django_db

ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"  # an EIP-55 test vector


@pytest.fixture
def trader() -> Account:
    return trader_get_or_create(address=ADDRESS)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_logout_revokes_only_the_presented_token(trader: Account) -> None:
    first, second = token_create(account=trader), token_create(account=trader)

    response = bearer(first.token).post("/api/v1/auth/logout")

    assert response.status_code == 204
    assert AuthToken.objects.get(pk=first.row.pk).revoked_at is not None
    revoked = bearer(first.token).get("/api/v1/balances")
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_revoked"
    assert bearer(second.token).get("/api/v1/balances").status_code == 200


def test_expired_token_is_refused(trader: Account) -> None:
    issued = token_create(account=trader)
    AuthToken.objects.filter(pk=issued.row.pk).update(expires_at=timezone.now())

    response = bearer(issued.token).get("/api/v1/balances")

    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
        ("Bearer", "authentication_failed"),
        ("Bearer a b", "authentication_failed"),
        ("Bearer cw_not-a-token-we-issued", "token_invalid"),
        ("Bearer something-else", "token_invalid"),
    ],
)
def test_requests_without_a_valid_token_get_401_with_a_bearer_challenge(
    header: str | None, code: str
) -> None:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/balances")

    assert response.status_code == 401
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_system_account_cannot_hold_a_trader_token() -> None:
    issued = token_create(account=system_account(SYSTEM_FEES))
    with pytest.raises(errors.TokenInvalid):
        token_authenticate(issued.token)


@pytest.mark.django_db(transaction=True)
async def test_websocket_helper_resolves_a_token_to_its_account() -> None:
    from asgiref.sync import sync_to_async

    account = await sync_to_async(trader_get_or_create)(address=ADDRESS)
    issued = await sync_to_async(token_create)(account=account)

    try:
        resolved, row = await aauthenticate_token(issued.token)
        assert resolved.pk == account.pk
        assert row.pk == issued.row.pk
        with pytest.raises(errors.TokenInvalid):
            await aauthenticate_token("cw_unknown")
    finally:
        # The ORM ran on asgiref's worker thread; close its connection so the test database
        # can be dropped at the end of the session.
        await sync_to_async(lambda: connection.close())()


def test_trader_addresses_are_stored_checksummed_and_found_in_any_case() -> None:
    account = trader_get_or_create(address=ADDRESS.lower())
    assert account.address == ADDRESS
    assert trader_get_or_create(address=ADDRESS.upper().replace("0X", "0x")).pk == account.pk
    assert account_by_address(address=ADDRESS.lower()) == account
    assert account_by_address(address="not an address") is None


def test_system_accounts_are_get_or_create_by_name() -> None:
    for name in SYSTEM_ACCOUNTS:
        account = system_account(name)
        assert account.kind == Account.Kind.SYSTEM
        assert system_account(name).pk == account.pk
        assert account_by_address(address=name) == account
    with pytest.raises(ValueError, match="unknown system account"):
        system_account("system:bonus")


@pytest.mark.parametrize(
    ("address", "kind"),
    [("system:fees2", Account.Kind.TRADER), (ADDRESS, Account.Kind.SYSTEM), ("0x12", "trader")],
)
def test_address_shape_must_match_the_kind(address: str, kind: str) -> None:
    with pytest.raises(IntegrityError, match="account_address_matches_kind"):
        Account.objects.create(address=address, kind=kind)


def test_openapi_schema_documents_bearer_auth_on_trader_endpoints() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The token from POST /api/v1/auth/login (Sign-In with Ethereum).",
    }
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/balances", "get"),
        ("/api/v1/ledger", "get"),
    ]:
        assert paths[path][method]["security"] == [{"bearerAuth": []}], path
    login = paths["/api/v1/auth/login"]["post"]
    assert "security" not in login or login["security"] in ([], [{}])
    assert "siwe_nonce_reused" in login["responses"]["401"]["description"]
