from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.markets.models import Asset, Market
from tests.factories import asset_make, market_make


@pytest.fixture
def usdc(db: None) -> Asset:
    return asset_make("USDC")


@pytest.fixture
def weth(db: None) -> Asset:
    return asset_make("WETH")


@pytest.fixture
def market(weth: Asset, usdc: Asset) -> Market:
    return market_make(weth, usdc)


@pytest.fixture
def make_trader(db: None) -> Callable[..., Account]:
    def make(tier: str = "standard") -> Account:
        account = trader_get_or_create(address="0x" + secrets.token_hex(20))
        if tier != account.tier:
            account.tier = tier
            account.save(update_fields=["tier"])
        return account

    return make


@pytest.fixture
def trader(make_trader: Callable[..., Account]) -> Account:
    return make_trader()
