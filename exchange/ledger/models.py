"""Double-entry ledger. Every amount is an integer of base units (NUMERIC(78,0), see money.py).

A JournalEntry is one business event (a deposit, a hold, a trade...) identified by
(kind, reference) so that posting it twice applies it once. Its JournalLines move signed amounts
between (account, asset, bucket) positions and sum to zero per asset. A Balance is the running
total of an account's lines per asset and bucket; it is written only by exchange.ledger.services,
in the same transaction as the lines that explain it.

Sign convention: the sum of every balance of an asset, system accounts included, is zero.
system:deposits therefore goes negative by what was deposited, system:withdrawals positive by
what was paid out, and traders plus system:fees hold what the exchange owes (invariant 1).
"""

from __future__ import annotations

from django.db import models

from exchange.accounts.models import Account
from exchange.markets.models import Asset
from exchange.money import BaseUnitsField


class Bucket(models.TextChoices):
    AVAILABLE = "available"
    HELD = "held"


class Balance(models.Model):
    # Indexed by ledger_balance_unique (account, asset).
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="balances", db_index=False
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="balances")
    available = BaseUnitsField(default=0)
    held = BaseUnitsField(default=0)
    # Copied from account.kind when the row is created (accounts never change kind), so the
    # CHECK constraint below can exempt system counterparties without a join.
    is_system = models.BooleanField(default=False)
    # Moves of this row so far: strictly increasing in commit order (the row is locked to move
    # it), so of two balance events on a websocket the higher version is the newer.
    version = models.BigIntegerField(db_default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="ledger_balance_unique"),
            models.CheckConstraint(
                condition=models.Q(is_system=True) | models.Q(available__gte=0, held__gte=0),
                name="ledger_balance_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.asset_id}: {self.available} + {self.held}"

    @property
    def total(self) -> int:
        return self.available + self.held


class JournalEntry(models.Model):
    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL = "withdrawal"
        HOLD = "hold"
        RELEASE = "release"
        TRADE = "trade"
        FEE = "fee"
        ADJUSTMENT = "adjustment"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The caller's idempotency key, unique per kind: "order:42", "trade:7:3", "0x<tx>:<log>".
    reference = models.CharField(max_length=128)
    metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["kind", "reference"], name="ledger_entry_idempotency"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.reference}"


class JournalLine(models.Model):
    # No database FK either: lines are only ever inserted by the statement that inserts their
    # entry, joined to its RETURNING rows; a per-line check at COMMIT was a third of the
    # matching worker's commit. ledger_check (e) reports any line without its entry.
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="lines", db_constraint=False
    )
    # No database FK on account and asset: each line's (account, asset) has a Balance row, with
    # real FKs, locked by the same posting. Per-line FK checks took a third of a batch's time
    # and KEY SHARE-lock hot rows (system:fees is in every trade) from every concurrent batch.
    # ledger_check (b) reports any line without its balance. on_delete=PROTECT still applies.
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="journal_lines",
        db_constraint=False,
        db_index=False,  # ledger_line_account_newest covers it
    )
    asset = models.ForeignKey(
        Asset,
        on_delete=models.PROTECT,
        related_name="journal_lines",
        db_constraint=False,
        db_index=False,
    )
    bucket = models.CharField(max_length=9, choices=Bucket.choices)
    amount = BaseUnitsField(help_text="Signed base units: positive credits the bucket.")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"], name="ledger_line_account_newest")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_line_nonzero"),
            models.CheckConstraint(
                condition=models.Q(bucket__in=Bucket.values), name="ledger_line_bucket_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.asset_id}/{self.bucket}: {self.amount:+}"
