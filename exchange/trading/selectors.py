"""Order and fill reads, always scoped to one account."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from exchange.accounts.models import Account
from exchange.trading.errors import OrderNotFound
from exchange.trading.models import Order, Trade


def order_list(
    *, account: Account, market: str | None = None, status: str | None = None
) -> QuerySet[Order]:
    orders = Order.objects.filter(account=account).select_related("market__base", "market__quote")
    if market:
        orders = orders.filter(market__symbol=market)
    if status == "open":
        orders = orders.live()
    elif status:
        orders = orders.filter(status=status)
    return orders


def order_get(
    *, account: Account, order_id: int | None = None, client_order_id: str | None = None
) -> Order:
    """The account's order; another account's order is reported as not found, never forbidden,
    so ids leak nothing."""
    orders = order_list(account=account)
    order = (
        orders.filter(pk=order_id).first()
        if order_id is not None
        else orders.filter(client_order_id=client_order_id).first()
    )
    if order is None:
        raise OrderNotFound("No such order for this account.")
    return order


def fill_list(*, account: Account, market: str | None = None) -> QuerySet[Trade]:
    trades = Trade.objects.filter(
        Q(maker_account=account) | Q(taker_account=account)
    ).select_related("market__base", "market__quote", "maker_order", "taker_order")
    if market:
        trades = trades.filter(market__symbol=market)
    return trades
