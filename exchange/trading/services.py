"""Order writes: place, cancel, cancel-all and the dead-man switch.

Every accepted command is appended to the market's command log with the next sequence number in
the same transaction that holds the funds, and a NOTIFY wakes the matching worker when that
transaction commits. Locks are always taken in the same order — account row, balance rows,
market sequence row — and the matching worker takes only balance rows, so nothing deadlocks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.ledger.services import hold
from exchange.markets.models import Market
from exchange.matching import OrderType, SelfTradePrevention, Side, TimeInForce, validate_order
from exchange.risk.services import risk_check_order
from exchange.trading import eip712
from exchange.trading.errors import (
    ChainNotConfigured,
    ClientOrderIdConflict,
    ExpiryTooFar,
    MarketNotFound,
    MarketNotOpen,
    NonceReused,
    OrderExpired,
    OrderInvalid,
    OrderNotFound,
    OrderNotOpen,
    ProtectionPriceRequired,
    SignatureInvalid,
    SignerMismatch,
)
from exchange.trading.models import DeadManSwitch, MarketSequence, Order, OrderCommand

NOTIFY_CHANNEL = "clearway_commands"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as signed: integers in base units, enums as their string values."""

    market: str
    side: str
    order_type: str
    price: int | None  # quote base units per whole base unit; a market order's protection price
    quantity: int  # base-asset base units
    time_in_force: str
    post_only: bool
    stp: str  # "" means the market's default
    client_order_id: str
    nonce: int
    expiry: int  # unix seconds
    signature: str

    def signed_fields(self, account_address: str) -> eip712.SignedOrderFields:
        return eip712.SignedOrderFields(
            account=account_address,
            market=self.market,
            side=self.side,
            orderType=self.order_type,
            price=self.price or 0,
            quantity=self.quantity,
            timeInForce=self.time_in_force,
            postOnly=self.post_only,
            selfTradePrevention=self.stp,
            clientOrderId=self.client_order_id,
            nonce=self.nonce,
            expiry=self.expiry,
        )

    def fingerprint(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Placement:
    order: Order
    created: bool  # False: an identical earlier request; this is its order


def verifying_contract() -> str:
    if not settings.VAULT_ADDRESS:
        raise ChainNotConfigured("The settlement contract address (VAULT_ADDRESS) is not set.")
    return settings.VAULT_ADDRESS


def hold_for(market: Market, request: OrderRequest) -> tuple[int, int]:
    """(asset id, amount) to hold: a sell holds its base quantity; a buy holds its worst-case
    quote notional plus the taker fee (the larger of the two fee rates), rounded up."""
    return hold_needed(market, request.side, request.price or 0, request.quantity)


def hold_needed(market: Market, side: str, price: int, quantity: int) -> tuple[int, int]:
    """(asset id, amount) an order of ``quantity`` at ``price`` holds (see ``hold_for``)."""
    if side == Side.SELL:
        return market.base_id, quantity
    notional = market.notional(price, quantity)
    fee_bps = max(market.taker_fee_bps, market.maker_fee_bps)
    return market.quote_id, notional + -(-notional * fee_bps // 10_000)


def _validate(market: Market, request: OrderRequest, now: datetime) -> None:
    if market.status != Market.Status.OPEN:
        raise MarketNotOpen(f"Market {market.symbol} is {market.status}.")
    spec = market.engine_spec()
    price_ticks = None
    if request.price is not None:
        price_ticks = spec.price_to_ticks(request.price)
        if price_ticks is None:
            raise OrderInvalid(
                "The price is not a positive multiple of the tick size.",
                code="price_not_on_tick",
                extra={"tick_size": str(spec.tick_size)},
            )
    lots = spec.quantity_to_lots(request.quantity)
    if lots is None:
        raise OrderInvalid(
            "The quantity is not a positive multiple of the lot size.",
            code="quantity_not_on_lot",
            extra={"lot_size": str(spec.lot_size)},
        )
    if request.side == Side.BUY and request.order_type == OrderType.MARKET and price_ticks is None:
        raise ProtectionPriceRequired(
            "A market buy needs a protection price (the worst price accepted) to size its hold."
        )
    reject = validate_order(
        spec,
        order_id="pending",
        account="pending",
        side=Side(request.side),
        order_type=OrderType(request.order_type),
        price=price_ticks,
        quantity=lots,
        time_in_force=engine_time_in_force(request),
        stp=SelfTradePrevention(request.stp) if request.stp else None,
    )
    if reject is not None:
        raise OrderInvalid(f"The order was rejected: {reject.value}.", code=reject.value)
    now_s = int(now.timestamp())
    if request.expiry <= now_s:
        raise OrderExpired("The order's expiry is in the past.")
    if request.expiry > now_s + settings.ORDER_MAX_LIFETIME_SECONDS:
        raise ExpiryTooFar(
            "The order's expiry is too far in the future.",
            extra={"max_lifetime_seconds": settings.ORDER_MAX_LIFETIME_SECONDS},
        )
    if market.max_notional and request.price is not None:
        notional = market.notional(request.price, request.quantity)
        if notional > market.max_notional:
            raise OrderInvalid(
                "The order's notional exceeds the market's maximum.",
                code="notional_above_max",
                extra={"max_notional": str(market.max_notional)},
            )


def engine_time_in_force(request: OrderRequest) -> TimeInForce:
    if request.post_only:
        return TimeInForce.POST_ONLY
    return TimeInForce(request.time_in_force)


def _existing(account: Account, request: OrderRequest) -> Order | None:
    order = Order.objects.filter(account=account, client_order_id=request.client_order_id).first()
    if order is None:
        return None
    if order.request_fingerprint != request.fingerprint():
        raise ClientOrderIdConflict(
            "This client order id was used for a different order.",
            extra={"order_id": order.pk},
        )
    return order


def next_sequence(market: Market) -> int:
    MarketSequence.objects.get_or_create(market=market)
    row = MarketSequence.objects.select_for_update().get(market=market)
    row.last_sequence += 1
    row.save(update_fields=["last_sequence"])
    return row.last_sequence


def notify_worker(market: Market) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, str(market.pk)])


def order_place(
    *, account: Account, request: OrderRequest, now: datetime | None = None
) -> Placement:
    """Validate, verify the signature, check risk, hold funds and sequence the order."""
    now = now or timezone.now()
    contract = verifying_contract()
    if (existing := _existing(account, request)) is not None:
        return Placement(existing, created=False)
    market = Market.objects.select_related("base", "quote").filter(symbol=request.market).first()
    if market is None:
        raise MarketNotFound(f"No market {request.market!r}.")
    _validate(market, request, now)
    try:
        signer = eip712.recover_signer(
            request.signed_fields(account.address), request.signature, settings.CHAIN_ID, contract
        )
    except eip712.SignatureInvalid as exc:
        raise SignatureInvalid(f"The signature is malformed: {exc}") from None
    if signer != account.address:
        raise SignerMismatch(
            "The signature does not match the authenticated account for this chain and contract.",
            extra={"recovered": signer},
        )
    try:
        return _sequence_order(account, market, request, now)
    except IntegrityError:
        # A concurrent identical request won the race on (account, client order id): answer
        # with its order. Otherwise the nonce was used by another order.
        if (existing := _existing(account, request)) is not None:
            return Placement(existing, created=False)
        raise NonceReused("This nonce was already used by another order.") from None


@transaction.atomic
def _sequence_order(
    account: Account, market: Market, request: OrderRequest, now: datetime
) -> Placement:
    # The account lock makes the risk checks (open orders, daily notional) exact under
    # concurrent requests from the same account. NO KEY: rows that merely reference the account
    # (orders, commands, trades) take KEY SHARE locks, which must not wait on it.
    account = Account.objects.select_for_update(no_key=True).get(pk=account.pk)
    # A concurrent identical retry may have committed while this one waited on the lock: its
    # order is the answer (checked before the nonce, which that order also holds).
    if (existing := _existing(account, request)) is not None:
        return Placement(existing, created=False)
    if Order.objects.filter(account=account, nonce=request.nonce).exists():
        raise NonceReused("This nonce was already used by another order.")
    hold_asset_id, hold_amount = hold_for(market, request)
    risk_check_order(
        account=account,
        market=market,
        side=request.side,
        price=request.price,
        quantity=request.quantity,
        now=now,
    )
    sequence = next_sequence(market)
    order = Order.objects.create(
        account=account,
        market=market,
        side=request.side,
        order_type=request.order_type,
        price=request.price,
        quantity=request.quantity,
        time_in_force=request.time_in_force,
        post_only=request.post_only,
        stp=request.stp or market.default_stp,
        client_order_id=request.client_order_id,
        nonce=request.nonce,
        expires_at=datetime.fromtimestamp(request.expiry, tz=UTC),
        signature=request.signature,
        request_fingerprint=request.fingerprint(),
        hold_asset_id=hold_asset_id,
        hold_amount=hold_amount,
        hold_remaining=hold_amount,
        sequence=sequence,
        created_at=now,
    )
    OrderCommand.objects.create(
        market=market,
        sequence=sequence,
        kind=OrderCommand.Kind.PLACE,
        account=account,
        order=order,
        # The placed amounts (an amend later changes the order row's): replaying the log from
        # the commands alone rebuilds the same book.
        payload={
            "order_id": order.pk,
            "price": None if request.price is None else str(request.price),
            "quantity": str(request.quantity),
        },
        accepted_at=now,
    )
    # The hold comes last: the balance row stays locked until COMMIT, and the matching worker
    # needs it for every fill of this account. The sequence row is locked longer instead,
    # which only other placements in this market wait on.
    hold(
        account=account,
        asset=market.base if hold_asset_id == market.base_id else market.quote,
        amount=hold_amount,
        reference=f"order:{account.pk}:{request.client_order_id}",
    )
    notify_worker(market)
    return Placement(order, created=True)


@transaction.atomic
def order_cancel(
    *,
    account: Account,
    order_id: int | None = None,
    client_order_id: str | None = None,
    now: datetime | None = None,
) -> Order:
    """Sequence a cancel for one of the account's open orders (by id or by client order id);
    the worker applies it. Another account's order is not found, whichever id names it."""
    orders = Order.objects.select_related("market").filter(account=account)
    if order_id is not None:
        order = orders.filter(pk=order_id).first()
    else:
        order = orders.filter(client_order_id=client_order_id).first()
    if order is None:
        raise OrderNotFound("No such order for this account.")
    if not order.is_open:
        raise OrderNotOpen(f"Order {order.pk} is {order.status}.", extra={"status": order.status})
    sequence = next_sequence(order.market)
    OrderCommand.objects.create(
        market=order.market,
        sequence=sequence,
        kind=OrderCommand.Kind.CANCEL,
        account=account,
        order=order,
        payload={"order_id": order.pk},
        accepted_at=now or timezone.now(),
    )
    notify_worker(order.market)
    return order


@transaction.atomic
def orders_cancel_all(
    *,
    account: Account,
    market: Market | None = None,
    side: str | None = None,
    now: datetime | None = None,
) -> list[OrderCommand]:
    """One cancel-all command per market where the account has open orders (or the one given)."""
    open_orders = Order.objects.live().filter(account=account)
    if market is not None:
        open_orders = open_orders.filter(market=market)
    if side is not None:
        open_orders = open_orders.filter(side=side)
    market_ids = sorted(set(open_orders.values_list("market_id", flat=True)))
    commands = []
    for market_row in Market.objects.filter(pk__in=market_ids).order_by("pk"):
        sequence = next_sequence(market_row)
        commands.append(
            OrderCommand.objects.create(
                market=market_row,
                sequence=sequence,
                kind=OrderCommand.Kind.CANCEL_ALL,
                account=account,
                payload={"side": side},
                accepted_at=now or timezone.now(),
            )
        )
        notify_worker(market_row)
    return commands


@transaction.atomic
def cancel_after_set(
    *, account: Account, timeout_seconds: int, now: datetime | None = None
) -> DeadManSwitch | None:
    """Arm (or renew) the dead-man switch; 0 disarms it. When the deadline passes without a
    renewal, every open order of the account is cancelled (``deadman_fire_due``)."""
    now = now or timezone.now()
    if timeout_seconds == 0:
        DeadManSwitch.objects.filter(account=account).delete()
        return None
    switch, _ = DeadManSwitch.objects.update_or_create(
        account=account, defaults={"deadline": now + timedelta(seconds=timeout_seconds)}
    )
    return switch


def deadman_fire_due(*, now: datetime | None = None) -> int:
    """Cancel all open orders of every account whose switch expired; returns how many fired.

    Called periodically by the matching worker. Each switch fires once: it is deleted in the
    same transaction that sequences its cancel-all commands.
    """
    now = now or timezone.now()
    fired = 0
    for account_id in DeadManSwitch.objects.filter(deadline__lte=now).values_list(
        "account_id", flat=True
    ):
        with transaction.atomic():
            switch = (
                DeadManSwitch.objects.select_for_update(skip_locked=True)
                .filter(account_id=account_id, deadline__lte=now)
                .first()
            )
            if switch is None:
                continue  # renewed, disarmed or fired by another worker meanwhile
            orders_cancel_all(account=switch.account, now=now)
            switch.delete()
            fired += 1
    return fired
