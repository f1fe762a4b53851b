from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from datetime import datetime

import pytest
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.ledger.models import Balance
from exchange.ledger.services import credit_deposit
from exchange.markets.models import Asset, Market
from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults, TierMarketAllowlist
from exchange.trading.models import Order, OrderCommand

USDC = 10**6
WETH = 10**18

_sequence = itertools.count(1)


@pytest.fixture
def usdc(db: None) -> Asset:
    return Asset.objects.create(symbol="USDC", name="USD Coin", decimals=6)


@pytest.fixture
def weth(db: None) -> Asset:
    return Asset.objects.create(symbol="WETH", name="Wrapped Ether", decimals=18)


def make_market(base: Asset, quote: Asset, symbol: str | None = None) -> Market:
    market = Market.objects.create(
        symbol=symbol or f"{base.symbol}-{quote.symbol}",
        base=base,
        quote=quote,
        tick_size=10_000,  # 0.01 USDC per WETH
        lot_size=10**15,  # 0.001 WETH
        min_quantity=10**15,
        max_quantity=1_000 * WETH,
        max_notional=10_000_000 * USDC,
    )
    return Market.objects.select_related("base", "quote").get(pk=market.pk)


@pytest.fixture
def market(weth: Asset, usdc: Asset) -> Market:
    return make_market(weth, usdc)


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


def fund(account: Account, asset: Asset, amount: int) -> None:
    credit_deposit(account=account, asset=asset, amount=amount, reference=f"fund:{next(_sequence)}")


def make_order(
    account: Account,
    market: Market,
    *,
    side: str = "buy",
    price: int | None = 2_000 * USDC,
    quantity: int = WETH,
    filled: int = 0,
    status: str = Order.Status.OPEN,
    created_at: datetime | None = None,
) -> Order:
    """An order row as the order service would leave it (no hold is posted: risk never reads
    holds of orders, only balances and order rows)."""
    n = next(_sequence)
    hold_asset = market.quote if side == "buy" else market.base
    hold = market.notional(price or 0, quantity) if side == "buy" else quantity
    return Order.objects.create(
        account=account,
        market=market,
        side=side,
        order_type="limit" if price is not None else "market",
        price=price,
        quantity=quantity,
        filled_quantity=filled,
        time_in_force="gtc",
        stp="cancel_taker",
        client_order_id=f"risk-{n}",
        nonce=n,
        signature="0x" + "00" * 65,
        request_fingerprint="0" * 64,
        status=status,
        hold_asset=hold_asset,
        hold_amount=hold,
        hold_remaining=hold,
        sequence=n,
        created_at=created_at or timezone.now(),
    )


def snapshot() -> tuple:
    """Everything an order placement or a risk decision could change."""
    return (
        list(Order.objects.order_by("pk").values()),
        list(OrderCommand.objects.order_by("pk").values()),
        list(Balance.objects.order_by("pk").values("account_id", "asset_id", "available", "held")),
        list(AccountRiskOverride.objects.order_by("pk").values()),
        list(MarketRiskDefaults.objects.order_by("pk").values()),
        list(TierMarketAllowlist.objects.order_by("pk").values()),
    )
