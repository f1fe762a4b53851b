from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from exchange.accounts.models import SYSTEM_DEPOSITS, Account
from exchange.accounts.services import system_account, token_create, trader_get_or_create
from exchange.markets.models import Asset
from tests.factories import asset_make


@pytest.fixture
def usdc(db: None) -> Asset:
    return asset_make("USDC")


@pytest.fixture
def weth(db: None) -> Asset:
    return asset_make("WETH")


@pytest.fixture
def make_trader(db: None) -> Callable[[], Account]:
    def make() -> Account:
        return trader_get_or_create(address="0x" + secrets.token_hex(20))

    return make


@pytest.fixture
def trader(make_trader: Callable[[], Account]) -> Account:
    return make_trader()


@pytest.fixture
def deposits(db: None) -> Account:
    return system_account(SYSTEM_DEPOSITS)


@pytest.fixture
def client_for() -> Callable[[Account], APIClient]:
    def make(account: Account) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=account).token}")
        return client

    return make
