"""order_place calls risk_check_order: a breach rolls everything back, holds included."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from django.conf import settings
from eth_account import Account as EthAccount

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.markets.models import Asset, Market
from exchange.risk.errors import MarketKillSwitch, OrderNotionalLimit
from exchange.risk.models import MarketRiskDefaults
from exchange.risk.services import kill_switch_set
from exchange.trading import eip712
from exchange.trading.models import Order
from exchange.trading.services import OrderRequest, order_place
from tests.factories import USDC, WETH
from tests.risk.support import fund, snapshot

pytestmark = pytest.mark.django_db

VAULT = "0x" + "5a" * 20


@pytest.fixture
def wallet(settings, usdc: Asset) -> tuple[Account, bytes]:  # type: ignore[no-untyped-def]
    settings.VAULT_ADDRESS = VAULT
    key = EthAccount.create()
    account = trader_get_or_create(address=key.address)
    fund(account, usdc, 100_000 * USDC)
    return account, key.key


def signed(
    account: Account, key: bytes, market: Market, nonce: int, *, quantity: int = WETH
) -> OrderRequest:
    request = OrderRequest(
        market=market.symbol,
        side="buy",
        order_type="limit",
        price=2_000 * USDC,
        quantity=quantity,
        time_in_force="gtc",
        post_only=False,
        stp="",
        client_order_id=f"c{nonce}",
        nonce=nonce,
        expiry=int(time.time()) + 3600,
        signature="",
    )
    fields = request.signed_fields(account.address)
    signature = eip712.sign(fields, key, settings.CHAIN_ID, settings.VAULT_ADDRESS)
    return replace(request, signature=signature)


def test_a_breach_writes_nothing_and_a_compliant_order_goes_through(wallet, market: Market) -> None:
    account, key = wallet
    MarketRiskDefaults.objects.filter(market=market).update(max_order_notional=10_000 * USDC)
    before = snapshot()
    with pytest.raises(OrderNotionalLimit):
        order_place(account=account, request=signed(account, key, market, 1, quantity=6 * WETH))
    assert snapshot() == before  # no order, no command, no hold

    placement = order_place(account=account, request=signed(account, key, market, 2))
    assert placement.created
    assert Order.objects.get().hold_amount == 2_000 * USDC  # notional; the market has no fee


def test_the_kill_switch_stops_placement(wallet, market: Market) -> None:
    account, key = wallet
    kill_switch_set(market=market, enabled=True)
    before = snapshot()
    with pytest.raises(MarketKillSwitch):
        order_place(account=account, request=signed(account, key, market, 1))
    assert snapshot() == before
