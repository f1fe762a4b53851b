from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import pytest
from django.conf import settings
from django.utils import timezone
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from siwe import ISO8601Datetime, SiweMessage


@dataclass
class Wallet:
    """A trader's wallet, as a dapp would drive it: the standard siwe package plus eth_account."""

    key: LocalAccount

    @property
    def address(self) -> str:
        return self.key.address

    def sign(self, text: str) -> str:
        signed = EthAccount.sign_message(encode_defunct(text=text), self.key.key)
        signature = signed.signature.hex()
        return signature if signature.startswith("0x") else "0x" + signature

    def message(
        self,
        nonce: str,
        *,
        domain: str | None = None,
        uri: str | None = None,
        chain_id: int | None = None,
        issued_at: datetime | None = None,
        expiration_time: datetime | None = None,
        not_before: datetime | None = None,
    ) -> str:
        fields: dict[str, object] = {
            "domain": domain or settings.SIWE_DOMAIN,
            "address": self.address,
            "statement": "Sign in to Clearway.",
            "uri": uri or settings.SIWE_URI,
            "version": "1",
            "chain_id": chain_id or settings.CHAIN_ID,
            "nonce": nonce,
            "issued_at": ISO8601Datetime.from_datetime(issued_at or timezone.now()),
        }
        if expiration_time is not None:
            fields["expiration_time"] = ISO8601Datetime.from_datetime(expiration_time)
        if not_before is not None:
            fields["not_before"] = ISO8601Datetime.from_datetime(not_before)
        return SiweMessage(**fields).prepare_message()


@pytest.fixture
def wallet() -> Wallet:
    return Wallet(EthAccount.create())


@pytest.fixture
def other_wallet() -> Wallet:
    return Wallet(EthAccount.create())


@pytest.fixture
def api() -> APIClient:
    # Sign-in is rate-limited per client address in Redis, which outlives a test: each test's
    # client comes from a loopback address of its own so one test never spends another's budget.
    host = secrets.randbits(24)
    return APIClient(REMOTE_ADDR=f"127.{host >> 16}.{(host >> 8) & 255}.{host & 255}")


def fetch_nonce(api: APIClient) -> str:
    response = api.get("/api/v1/auth/nonce")
    assert response.status_code == 200
    return response.json()["nonce"]
