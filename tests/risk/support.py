"""Helpers for the risk tests: funding, order rows as the order service leaves them, and a
snapshot of everything a placement or a risk decision could change."""

from __future__ import annotations

import itertools
from datetime import datetime

from django.utils import timezone

from exchange.accounts.models import Account
from exchange.ledger.models import Balance
from exchange.ledger.services import credit_deposit
from exchange.markets.models import Asset, Market
from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults, TierMarketAllowlist
from exchange.trading.models import Order, OrderCommand
from tests.factories import USDC, WETH, market_make

_sequence = itertools.count(1)


def make_market(base: Asset, quote: Asset, symbol: str | None = None) -> Market:
    return market_make(base, quote, **({"symbol": symbol} if symbol else {}))


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
