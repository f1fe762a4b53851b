"""Orders and the sequenced command log the matching worker consumes.

An order row is written when its place command is sequenced; the worker alone moves it through
open / partially filled / filled / cancelled afterwards. Amounts are base units (ints).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from exchange.matching import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.money import BaseUnitsField


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]


class OrderStatus(models.TextChoices):
    ACCEPTED = "accepted"  # sequenced, not yet applied by the matching worker
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


# Orders that may still trade: accepted (not yet applied), open or partially filled.
LIVE_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


class OrderQuerySet(models.QuerySet):
    def live(self) -> OrderQuerySet:
        """Orders that may still trade, through the partial indexes on ``is_live``."""
        return self.filter(is_live=True)


class Order(models.Model):
    Status = OrderStatus

    # The matching worker updates every order it touches, several times in its life. An update
    # that changes no indexed column and finds room on its page is HOT: no index is written.
    # Hence: no index on status (the live-order indexes are partial, on ``is_live``, which
    # stays true from accepted to open to partially filled), no single-column index a
    # composite one covers, and a fillfactor (migration 0008) that leaves room for new
    # versions.
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    # No database FK check on the market (nor on hold_asset): every placement in flight would
    # KEY SHARE-lock the market's one row (a MultiXact as soon as two overlap, and a WAL
    # record each), for a reference order_place has just read. PROTECT still guards deletes.
    market = models.ForeignKey(
        "markets.Market",
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
        db_constraint=False,
    )
    side = models.CharField(max_length=4, choices=_choices(Side))
    order_type = models.CharField(max_length=6, choices=_choices(OrderType))
    # Quote base units per whole base unit; for a market order, the optional protection price.
    price = BaseUnitsField(null=True, blank=True)
    quantity = BaseUnitsField()  # base-asset base units
    filled_quantity = BaseUnitsField(default=0)
    # Still open in the book (base units); set by the matching worker. With the order's sequence
    # (its time priority) this is all the state needed to rebuild the book after a restart.
    remaining_quantity = BaseUnitsField(default=0)
    time_in_force = models.CharField(max_length=9, choices=_choices(TimeInForce))
    post_only = models.BooleanField(default=False)
    stp = models.CharField(max_length=24, choices=_choices(SelfTradePrevention))
    client_order_id = models.CharField(max_length=64)
    nonce = BaseUnitsField()
    expires_at = models.DateTimeField(null=True, blank=True)
    signature = models.CharField(max_length=132)
    # sha256 of the canonical request: a retry with the same client order id must match it.
    request_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)
    is_live = models.GeneratedField(
        expression=models.Q(status__in=LIVE_STATUSES),
        output_field=models.BooleanField(),
        db_persist=True,
    )
    reason = models.CharField(max_length=32, blank=True, help_text="Reject or cancel reason.")
    # Not indexed, like the command's and the trade's references to orders and accounts below:
    # no query looks rows up by them, and every index costs on the hot insert or update. Only
    # deleting the referenced row would scan (PROTECT refuses it anyway).
    hold_asset = models.ForeignKey(
        "markets.Asset",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    hold_amount = BaseUnitsField(help_text="Funds held at placement.")
    hold_remaining = BaseUnitsField(help_text="Still held; released or consumed by the worker.")
    sequence = models.BigIntegerField(help_text="Sequence of the place command.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "client_order_id"], name="order_client_id"),
            models.UniqueConstraint(fields=["account", "nonce"], name="order_nonce_once"),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__lte=models.F("quantity")),
                name="order_not_overfilled",
            ),
            models.CheckConstraint(
                condition=models.Q(hold_remaining__gte=0)
                & models.Q(hold_remaining__lte=models.F("hold_amount")),
                name="order_hold_within_bounds",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "market"], condition=models.Q(is_live=True), name="order_live"
            ),
            models.Index(
                fields=["market", "sequence"],
                condition=models.Q(is_live=True),
                name="order_live_by_market",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} {self.side} {self.market_id}"

    @property
    def is_open(self) -> bool:
        return self.status in LIVE_STATUSES


class MarketSequence(models.Model):
    """The per-market counter that orders commands; its row lock serialises sequencing."""

    market = models.OneToOneField("markets.Market", on_delete=models.PROTECT, primary_key=True)
    last_sequence = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.market_id} @ {self.last_sequence}"


class MarketCursor(models.Model):
    """How far the matching worker has applied a market's command log.

    Separate from MarketSequence so the worker never waits on the row order placement locks.
    The worker advances it with a compare-and-set on ``applied_sequence`` in the same
    transaction as the batch's effects: a command is applied exactly once even if two workers
    ever believed they owned the market.
    """

    market = models.OneToOneField("markets.Market", on_delete=models.PROTECT, primary_key=True)
    applied_sequence = models.BigIntegerField(default=0)
    event_sequence = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.market_id} applied {self.applied_sequence}"


class OrderCommand(models.Model):
    """One entry of the command log. ``payload`` holds only ints and strings (base units)."""

    class Kind(models.TextChoices):
        PLACE = "place"
        CANCEL = "cancel"
        CANCEL_ALL = "cancel_all"
        EXPIRE = "expire"
        REPLACE = "replace"  # payload: order_id, price, quantity, hold_added, hold_asset_id

    # The log's references are not checked row by row in the database (db_constraint=False):
    # a command is written in the transaction that reads its market and account and writes or
    # reads its order, and those checks (with their row locks) were a third of a placement's
    # COMMIT. The matching worker reads every command with its order, and a place command
    # without its order stops it loudly.
    market = models.ForeignKey(  # indexed by command_sequence_once (market, sequence)
        "markets.Market",
        on_delete=models.PROTECT,
        related_name="commands",
        db_index=False,
        db_constraint=False,
    )
    sequence = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        null=True,
        related_name="commands",
        db_index=False,
        db_constraint=False,
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        null=True,
        related_name="commands",
        db_index=False,
        db_constraint=False,
    )
    payload = models.JSONField(default=dict)
    accepted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["market", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["market", "sequence"], name="command_sequence_once"),
        ]

    def __str__(self) -> str:
        return f"{self.market_id}#{self.sequence} {self.kind}"


class OrderReplace(models.Model):
    """A signed amend of an open order, as requested: its replace command is sequenced with it.

    ``price`` / ``quantity`` are what was asked (None: unchanged; quantity is the new total,
    filled included). ``hold_added`` is what the request held on top of the order's hold for a
    worst case; the matching worker releases whatever the amended order does not need. Whether
    the engine applied it shows on the order (its price, quantity and, when re-queued, its
    sequence).
    """

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="replaces", db_constraint=False
    )
    price = BaseUnitsField(null=True, blank=True)
    quantity = BaseUnitsField(null=True, blank=True)
    nonce = BaseUnitsField()
    expires_at = models.DateTimeField()
    signature = models.CharField(max_length=132)
    request_fingerprint = models.CharField(max_length=64)
    hold_added = BaseUnitsField(default=0)
    sequence = models.BigIntegerField(help_text="Sequence of the replace command.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "nonce"], name="order_replace_nonce_once"),
        ]

    def __str__(self) -> str:
        return f"replace of order {self.order_id} @ {self.sequence}"


class DeadManSwitch(models.Model):
    """Cancel-after: unless renewed before ``deadline``, all the account's orders are cancelled."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, primary_key=True)
    deadline = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.account_id} until {self.deadline:%Y-%m-%d %H:%M:%S}"


class Trade(models.Model):
    """A fill, written by the matching worker; ``trade_id`` is the engine's deterministic id
    (market, command sequence, match index), so re-applying a command cannot duplicate it."""

    class SettlementStatus(models.TextChoices):
        MATCHED = "matched"
        BATCHED = "batched"
        SUBMITTED = "submitted"
        CONFIRMED = "confirmed"
        FAILED = "failed"

    # Unique through a constraint (no LIKE-pattern twin index) and no single-column indexes the
    # composite ones below cover: the worker inserts every trade, each index costs.
    # No database FK checks either (db_constraint=False): only the worker inserts trades, from
    # orders it read in the same market, and each check took a KEY SHARE lock at COMMIT, on
    # account rows that order placement locks FOR UPDATE. PROTECT still guards ORM deletes.
    trade_id = models.CharField(max_length=64)
    market = models.ForeignKey(
        "markets.Market",
        on_delete=models.PROTECT,
        related_name="trades",
        db_index=False,
        db_constraint=False,
    )
    sequence = models.BigIntegerField(help_text="Sequence of the taker's command.")
    maker_order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="maker_trades",
        db_index=False,
        db_constraint=False,
    )
    taker_order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="taker_trades",
        db_index=False,
        db_constraint=False,
    )
    maker_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="maker_trades",
        db_index=False,
        db_constraint=False,
    )
    taker_account = models.ForeignKey(
        "accounts.Account",
        on_delete=models.PROTECT,
        related_name="taker_trades",
        db_index=False,
        db_constraint=False,
    )
    taker_side = models.CharField(max_length=4, choices=_choices(Side))
    price = BaseUnitsField()
    quantity = BaseUnitsField()
    notional = BaseUnitsField(help_text="Quote base units.")
    maker_fee = BaseUnitsField(help_text="Quote base units.")
    taker_fee = BaseUnitsField(help_text="Quote base units.")
    settlement_status = models.CharField(
        max_length=10, choices=SettlementStatus.choices, default=SettlementStatus.MATCHED
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["trade_id"], name="trade_id_once")]
        indexes = [
            models.Index(fields=["market", "-id"]),
            models.Index(fields=["maker_account", "-id"]),
            models.Index(fields=["taker_account", "-id"]),
            models.Index(fields=["settlement_status", "id"]),
        ]

    def __str__(self) -> str:
        return self.trade_id
