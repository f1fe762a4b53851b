"""Amend (cancel-replace) an open order: a new price and/or a new total quantity, signed.

Binance's amend-keep-priority semantics, which the engine implements: lowering the quantity at
the same price keeps the order's place in its level; any other change re-queues it at the back
of its (new) level, where it may trade at once as a taker. The quantity is the new *total*,
filled included (FIX OrderQty), so a fill racing the request never leaves more exposure than
asked for; a total not above what is already filled is refused.

Holds: the request holds, on top of what the order holds, what the amended order could need in
the worst case (fills before the amend is applied may have used the old price); the matching
worker then releases down to exactly what the amended order needs, or the whole addition when
the engine refuses the amend. Nothing is ever taken from the order's hold here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.ledger.services import hold
from exchange.markets.models import Market
from exchange.matching import OrderType, RejectReason, Side, validate_replace
from exchange.money import from_base_units
from exchange.risk import selectors as risk_selectors
from exchange.risk.errors import MarketKillSwitch, OrderNotionalLimit, OrderQuantityLimit
from exchange.trading import eip712
from exchange.trading.errors import (
    ExpiryTooFar,
    MarketNotOpen,
    NonceReused,
    OrderExpired,
    OrderInvalid,
    OrderNotFound,
    OrderNotOpen,
    OrderNotReplaceable,
    SignatureInvalid,
    SignerMismatch,
)
from exchange.trading.models import Order, OrderCommand, OrderReplace
from exchange.trading.services import hold_needed, next_sequence, notify_worker, verifying_contract


@dataclass(frozen=True, slots=True)
class ReplaceRequest:
    """An amend as signed: base units, None for a field left unchanged (signed as 0)."""

    order_id: int
    price: int | None
    quantity: int | None
    nonce: int
    expiry: int  # unix seconds
    signature: str

    def signed_fields(self, account_address: str, market: str) -> eip712.SignedReplaceFields:
        return eip712.SignedReplaceFields(
            account=account_address,
            market=market,
            orderId=self.order_id,
            price=self.price or 0,
            quantity=self.quantity or 0,
            nonce=self.nonce,
            expiry=self.expiry,
        )

    def fingerprint(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replacement:
    order: Order
    replace: OrderReplace
    created: bool  # False: an identical earlier request (same nonce and body); this is it


def _existing(account: Account, request: ReplaceRequest) -> OrderReplace | None:
    found = OrderReplace.objects.filter(account=account, nonce=request.nonce).first()
    if found is not None and found.request_fingerprint != request.fingerprint():
        raise NonceReused("This nonce was already used by another amend.")
    return found


def _validate(market: Market, order: Order, request: ReplaceRequest, now: datetime) -> None:
    if market.status != Market.Status.OPEN:
        raise MarketNotOpen(f"Market {market.symbol} is {market.status}.")
    if order.order_type != OrderType.LIMIT:
        raise OrderNotReplaceable("Only limit orders can be amended (market orders never rest).")
    spec = market.engine_spec()
    ticks = lots = None
    if request.price is not None:
        ticks = spec.price_to_ticks(request.price)
        if ticks is None:
            raise OrderInvalid(
                "The price is not a positive multiple of the tick size.",
                code="price_not_on_tick",
                extra={"tick_size": str(spec.tick_size)},
            )
    if request.quantity is not None:
        lots = spec.quantity_to_lots(request.quantity)
        if lots is None:
            raise OrderInvalid(
                "The quantity is not a positive multiple of the lot size.",
                code="quantity_not_on_lot",
                extra={"lot_size": str(spec.lot_size)},
            )
    reason = validate_replace(spec, price=ticks, quantity=lots)
    if reason is not None:
        raise OrderInvalid(f"The amend was rejected: {reason.value}.", code=reason.value)
    now_s = int(now.timestamp())
    if request.expiry <= now_s:
        raise OrderExpired("The amend's expiry is in the past.")
    if request.expiry > now_s + settings.ORDER_MAX_LIFETIME_SECONDS:
        raise ExpiryTooFar(
            "The amend's expiry is too far in the future.",
            extra={"max_lifetime_seconds": settings.ORDER_MAX_LIFETIME_SECONDS},
        )
    price = order.price if request.price is None else request.price
    quantity = order.quantity if request.quantity is None else request.quantity
    if market.max_notional and market.notional(price, quantity) > market.max_notional:
        raise OrderInvalid(
            "The amended order's notional exceeds the market's maximum.",
            code="notional_above_max",
            extra={"max_notional": str(market.max_notional)},
        )


def _risk_check(account: Account, market: Market, price: int, quantity: int) -> None:
    """The per-order limits apply to the amended order as to a new one (an amend may re-queue
    it); the count and daily limits do not: it is not another order."""
    limits = risk_selectors.effective_limits(account=account, market=market)
    if limits.kill_switch:
        raise MarketKillSwitch(
            f"New orders in {market.symbol} are halted.", extra={"market": market.symbol}
        )
    if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
        raise OrderQuantityLimit(
            "The amended quantity is above this account's limit.",
            extra={"limit": from_base_units(limits.max_order_quantity, market.base.decimals)},
        )
    notional = market.notional(price, quantity)
    if limits.max_order_notional is not None and notional > limits.max_order_notional:
        raise OrderNotionalLimit(
            "The amended order's notional is above this account's limit.",
            extra={"limit": from_base_units(limits.max_order_notional, market.quote.decimals)},
        )


def _verify(account: Account, market: Market, request: ReplaceRequest) -> None:
    contract = verifying_contract()
    try:
        signer = eip712.recover_signer(
            request.signed_fields(account.address, market.symbol),
            request.signature,
            settings.CHAIN_ID,
            contract,
        )
    except eip712.SignatureInvalid as exc:
        raise SignatureInvalid(f"The signature is malformed: {exc}") from None
    if signer != account.address:
        raise SignerMismatch(
            "The signature does not match the authenticated account for this chain and contract.",
            extra={"recovered": signer},
        )


def order_replace(
    *, account: Account, request: ReplaceRequest, now: datetime | None = None
) -> Replacement:
    """Validate and verify an amend, hold what it may need and sequence it for the worker."""
    now = now or timezone.now()
    verifying_contract()
    if (found := _existing(account, request)) is not None:
        return Replacement(found.order, found, created=False)
    order = (
        Order.objects.select_related("market__base", "market__quote")
        .filter(pk=request.order_id, account=account)
        .first()
    )
    if order is None:
        raise OrderNotFound("No such order for this account.")
    market = order.market
    _validate(market, order, request, now)
    _verify(account, market, request)
    _risk_check(
        account,
        market,
        order.price if request.price is None else request.price,
        order.quantity if request.quantity is None else request.quantity,
    )
    try:
        return _sequence_replace(account, market, order, request, now)
    except IntegrityError:
        # A concurrent identical request won the race on (account, nonce): answer with it.
        if (found := _existing(account, request)) is not None:
            return Replacement(found.order, found, created=False)
        raise NonceReused("This nonce was already used by another amend.") from None


@transaction.atomic
def _sequence_replace(
    account: Account, market: Market, order: Order, request: ReplaceRequest, now: datetime
) -> Replacement:
    # Lock order as for placement: account, then the market's sequence row, balances last.
    account = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    if (found := _existing(account, request)) is not None:
        return Replacement(found.order, found, created=False)
    order.refresh_from_db(fields=["status", "filled_quantity", "hold_remaining", "price"])
    if not order.is_open:
        raise OrderNotOpen(f"Order {order.pk} is {order.status}.", extra={"status": order.status})
    quantity = order.quantity if request.quantity is None else request.quantity
    if quantity <= order.filled_quantity:
        raise OrderInvalid(
            "The new total quantity is not above what is already filled.",
            code=RejectReason.QUANTITY_NOT_ABOVE_FILLED.value,
            extra={"filled_quantity": str(order.filled_quantity)},
        )
    price = order.price if request.price is None else request.price
    # Worst case until the worker applies it: no further fill, and (for a buy) fills meanwhile
    # at the old price if that is the higher one. The worker releases the rest exactly.
    worst_price = max(price, order.price) if order.side == Side.BUY else price
    _, needed = hold_needed(market, order.side, worst_price, quantity - order.filled_quantity)
    hold_added = max(0, needed - order.hold_remaining)
    sequence = next_sequence(market)
    replace = OrderReplace.objects.create(
        account=account,
        order=order,
        price=request.price,
        quantity=request.quantity,
        nonce=request.nonce,
        expires_at=datetime.fromtimestamp(request.expiry, tz=UTC),
        signature=request.signature,
        request_fingerprint=request.fingerprint(),
        hold_added=hold_added,
        sequence=sequence,
        created_at=now,
    )
    OrderCommand.objects.create(
        market=market,
        sequence=sequence,
        kind=OrderCommand.Kind.REPLACE,
        account=account,
        order=order,
        payload={
            "order_id": order.pk,
            "price": None if request.price is None else str(request.price),
            "quantity": None if request.quantity is None else str(request.quantity),
            "hold_added": str(hold_added),
            "hold_asset_id": order.hold_asset_id,
        },
        accepted_at=now,
    )
    if hold_added:
        hold(
            account=account,
            asset=market.base if order.hold_asset_id == market.base_id else market.quote,
            amount=hold_added,
            reference=f"order-replace:{account.pk}:{request.nonce}",
        )
    notify_worker(market)
    return Replacement(order, replace, created=True)
