from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from exchange.accounts import errors
from exchange.accounts.models import Account, AuthToken, SiweNonce
from exchange.accounts.services import siwe_login, token_hash
from exchange.accounts.signatures import high_s_twin
from tests.accounts.conftest import Wallet, fetch_nonce
from tests.support import run_together

pytestmark = pytest.mark.django_db


def login(api: APIClient, message: str, signature: str):  # type: ignore[no-untyped-def]
    return api.post(
        "/api/v1/auth/login", {"message": message, "signature": signature}, format="json"
    )


def test_nonce_is_fresh_alphanumeric_and_names_what_to_sign(api: APIClient) -> None:
    first = api.get("/api/v1/auth/nonce")
    second = api.get("/api/v1/auth/nonce")
    body = first.json()
    assert body["nonce"].isalnum() and len(body["nonce"]) >= 8
    assert body["nonce"] != second.json()["nonce"]
    assert body["domain"] == settings.SIWE_DOMAIN
    assert body["uri"] == settings.SIWE_URI
    assert body["chain_id"] == settings.CHAIN_ID
    assert first["Cache-Control"] == "no-store"
    row = SiweNonce.objects.get(value=body["nonce"])
    assert row.used_at is None
    assert row.expires_at - row.issued_at == timedelta(minutes=5)


def test_sign_in_creates_the_account_once_and_returns_a_working_token(
    api: APIClient, wallet: Wallet
) -> None:
    message = wallet.message(fetch_nonce(api))
    response = login(api, message, wallet.sign(message))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["address"] == wallet.address
    assert body["token"].startswith("cw_")
    account = Account.objects.get(address=wallet.address)
    assert account.kind == Account.Kind.TRADER
    assert account.tier == "standard"

    # Only a hash of the token is stored.
    row = AuthToken.objects.get(account=account)
    assert row.key_hash == token_hash(body["token"])
    assert body["token"] not in row.key_hash
    assert row.expires_at - row.created_at == timedelta(seconds=settings.AUTH_TOKEN_TTL_SECONDS)

    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert api.get("/api/v1/balances").status_code == 200

    again = wallet.message(fetch_nonce(api))
    second = login(APIClient(), again, wallet.sign(again))
    assert second.status_code == 200
    assert second.json()["token"] != body["token"]
    assert Account.objects.filter(kind=Account.Kind.TRADER).count() == 1
    assert AuthToken.objects.count() == 2


def _now() -> datetime:
    return timezone.now()


# Each case: how to spoil a sign-in, the code it must answer, and the status.
REJECTIONS: dict[str, tuple[Callable[[Wallet, Wallet, str], tuple[str, str]], str, int]] = {
    "malformed": (lambda w, o, n: ("hello, let me in", w.sign("hello")), "siwe_malformed", 400),
    "non-canonical": (
        lambda w, o, n: (w.message(n) + "\n", w.sign(w.message(n) + "\n")),
        "siwe_malformed",
        400,
    ),
    "lower-case address": (
        lambda w, o, n: (
            w.message(n).replace(w.address, w.address.lower()),
            w.sign(w.message(n).replace(w.address, w.address.lower())),
        ),
        "siwe_malformed",
        400,
    ),
    "garbled signature": (
        lambda w, o, n: (w.message(n), "0x" + "00" * 65),
        "siwe_bad_signature",
        401,
    ),
    "short signature": (lambda w, o, n: (w.message(n), "0x1234"), "siwe_bad_signature", 401),
    # EIP-2: the high-s twin of the wallet's own valid signature (r, n - s, v flipped).
    "high-s twin": (
        lambda w, o, n: (w.message(n), high_s_twin(w.sign(w.message(n)))),
        "signature_not_canonical",
        400,
    ),
    "other signer": (
        lambda w, o, n: (w.message(n), o.sign(w.message(n))),
        "siwe_signer_mismatch",
        401,
    ),
    "wrong domain": (
        lambda w, o, n: _signed(w, n, domain="evil.example"),
        "siwe_domain_mismatch",
        401,
    ),
    "wrong uri": (
        lambda w, o, n: _signed(w, n, uri="https://evil.example/login"),
        "siwe_uri_mismatch",
        401,
    ),
    "wrong chain": (lambda w, o, n: _signed(w, n, chain_id=1), "siwe_chain_mismatch", 401),
    "expired": (
        lambda w, o, n: _signed(
            w,
            n,
            issued_at=_now() - timedelta(minutes=2),
            expiration_time=_now() - timedelta(seconds=5),
        ),
        "siwe_expired",
        401,
    ),
    "issued long ago": (
        lambda w, o, n: _signed(w, n, issued_at=_now() - timedelta(hours=1)),
        "siwe_expired",
        401,
    ),
    "not before the future": (
        lambda w, o, n: _signed(w, n, not_before=_now() + timedelta(minutes=10)),
        "siwe_not_yet_valid",
        401,
    ),
    "issued in the future": (
        lambda w, o, n: _signed(w, n, issued_at=_now() + timedelta(minutes=10)),
        "siwe_not_yet_valid",
        401,
    ),
    "unknown nonce": (lambda w, o, n: _signed(w, "NeverIssued12345"), "siwe_nonce_unknown", 401),
}


def _signed(wallet: Wallet, nonce: str, **fields: object) -> tuple[str, str]:
    message = wallet.message(nonce, **fields)  # type: ignore[arg-type]
    return message, wallet.sign(message)


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejected_sign_in_answers_its_code_and_creates_nothing(
    case: str, api: APIClient, wallet: Wallet, other_wallet: Wallet
) -> None:
    spoil, code, status = REJECTIONS[case]
    nonce = fetch_nonce(api)
    message, signature = spoil(wallet, other_wallet, nonce)

    response = login(api, message, signature)

    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "extra"}
    assert not Account.objects.filter(kind=Account.Kind.TRADER).exists()
    assert not AuthToken.objects.exists()
    # A refused attempt does not burn the nonce: the wallet can still sign in with it.
    assert SiweNonce.objects.get(value=nonce).used_at is None
    good = wallet.message(nonce)
    assert login(api, good, wallet.sign(good)).status_code == 200


def test_rejection_codes_are_distinct() -> None:
    codes = [cls.code for cls in errors.SIWE_ERRORS]
    assert len(codes) == len(set(codes))
    assert {code for _, code, _ in REJECTIONS.values()} <= set(codes)


def test_a_nonce_signs_in_once(api: APIClient, wallet: Wallet) -> None:
    message = wallet.message(fetch_nonce(api))
    signature = wallet.sign(message)
    assert login(api, message, signature).status_code == 200

    replay = login(api, message, signature)

    assert replay.status_code == 401
    assert replay.json()["code"] == "siwe_nonce_reused"
    assert AuthToken.objects.count() == 1


def test_an_expired_nonce_is_refused(api: APIClient, wallet: Wallet) -> None:
    nonce = fetch_nonce(api)
    SiweNonce.objects.filter(value=nonce).update(expires_at=timezone.now() - timedelta(seconds=1))
    message = wallet.message(nonce)

    response = login(api, message, wallet.sign(message))

    assert response.status_code == 401
    assert response.json()["code"] == "siwe_nonce_expired"
    assert not Account.objects.filter(kind=Account.Kind.TRADER).exists()
    assert not AuthToken.objects.exists()


def test_missing_fields_are_a_validation_error(api: APIClient) -> None:
    response = api.post("/api/v1/auth/login", {"message": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "signature" in response.json()["extra"]["fields"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_logins_with_one_nonce_sign_in_exactly_once(
    api: APIClient, wallet: Wallet
) -> None:
    message = wallet.message(fetch_nonce(api))
    signature = wallet.sign(message)
    threads_count = 8

    def attempt() -> str:
        try:
            siwe_login(message=message, signature=signature)
        except errors.SiweRejected as exc:
            return exc.code
        return "signed-in"

    outcomes = run_together([attempt] * threads_count)

    assert sorted(outcomes) == ["signed-in"] + ["siwe_nonce_reused"] * (threads_count - 1)
    assert AuthToken.objects.count() == 1
    assert Account.objects.filter(address=wallet.address).count() == 1
