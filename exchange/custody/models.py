"""Custody: settlement batches on the vault, deposits seen on chain, and the chain cursor.

Everything is keyed by the vault's address as well: a batch id, a scanned block and a cursor only
mean something on one contract (a dev chain restarted with a new vault starts again at batch 1).
Amounts are integers of base units; deltas are stored with their amounts as decimal strings so a
JSON reader in any language gets them exactly.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from exchange.money import BaseUnitsField


class BatchCounter(models.Model):
    """The next batch id a vault accepts, as a row locked FOR UPDATE by whoever assigns one.

    Not a sequence: the contract takes batch ids strictly in order from 1, so an id lost to a
    rolled-back transaction (a sequence gap) would stop settlement for good.
    """

    vault = models.CharField(max_length=42, primary_key=True)
    next_batch_id = models.BigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.vault} next {self.next_batch_id}"


class SettlementBatch(models.Model):
    class Status(models.TextChoices):
        BUILT = "built"  # cut from matched trades; not on chain yet
        SUBMITTED = "submitted"  # included in a block; waiting for the confirmation depth
        CONFIRMED = "confirmed"
        FAILED = "failed"  # rejected by the contract; its trades went back to matched

    vault = models.CharField(max_length=42)
    batch_id = models.BigIntegerField(help_text="The contract's uint64 batch id.")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.BUILT)
    trades_root = models.CharField(max_length=66)
    deltas = models.JSONField(help_text="Netted [{account, token, amount}], amounts as strings.")
    trade_count = models.PositiveIntegerField()
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    confirmations = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="Submission attempts.")
    error = models.TextField(blank=True)
    # The cutting activity's idempotency key: a retried cut returns this batch, not a new one.
    cut_key = models.CharField(max_length=128, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Set when a reorg took a confirmed batch off the chain and it went back to submitted for
    # its workflow to settle again; cleared once it is confirmed again. The chain watcher starts
    # that workflow run, and this timestamp is what tells one reopening from the next.
    reopened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "settlement batches"
        constraints = [
            # A failed batch gives its id back (the contract never saw it), so only live batches
            # are unique per id.
            models.UniqueConstraint(
                fields=["vault", "batch_id"],
                condition=~models.Q(status="failed"),
                name="custody_batch_id_once",
            ),
        ]
        indexes = [models.Index(fields=["vault", "status"])]

    def __str__(self) -> str:
        return f"batch {self.batch_id} ({self.status})"


class BatchTrade(models.Model):
    """A trade's membership in a batch. A trade can appear in several batches over time, in at
    most one that has not failed."""

    batch = models.ForeignKey(SettlementBatch, on_delete=models.CASCADE, related_name="members")
    trade = models.ForeignKey(
        "trading.Trade", on_delete=models.PROTECT, related_name="batch_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "trade"], name="custody_batch_trade_once"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} in {self.batch_id}"


class Deposit(models.Model):
    """A vault Deposited event; credited to the ledger once it is deep enough."""

    class Status(models.TextChoices):
        SEEN = "seen"
        CREDITED = "credited"
        ORPHANED = "orphaned"  # its block left the canonical chain before it was credited
        # Credited, then a reorg deeper than the confirmation depth took it off the chain: the
        # credit stays (nothing is reversed silently) and the account's withdrawals are frozen
        # until an operator decides. Back to credited if the same log reappears on the chain.
        REORGED = "reorged"

    vault = models.CharField(max_length=42)
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    depositor = models.CharField(max_length=42)
    token = models.CharField(max_length=42)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="deposits"
    )
    asset = models.ForeignKey(
        "markets.Asset",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deposits",
        help_text="Empty (and not credited) while the token is not a listed asset.",
    )
    amount = BaseUnitsField()
    confirmations = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SEEN)
    journal_entry = models.ForeignKey(
        "ledger.JournalEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The ledger credit.",
    )
    credited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["tx_hash", "log_index"], name="custody_deposit_once"),
        ]
        indexes = [
            models.Index(fields=["account", "-id"]),
            models.Index(fields=["vault", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.tx_hash}:{self.log_index}"

    @property
    def reference(self) -> str:
        """The ledger entry's idempotency key."""
        return f"{self.tx_hash}:{self.log_index}"


class ChainCursor(models.Model):
    """How far the chain watcher has scanned one vault's chain."""

    vault = models.CharField(max_length=42, primary_key=True)
    chain_id = models.BigIntegerField()
    block_number = models.BigIntegerField(help_text="Last block scanned.")
    block_hash = models.CharField(max_length=66)
    # The chain head the last scan saw. While the scan is behind it, its hash is the only trace
    # of the blocks in between: if it changes before they are scanned, they were reorged.
    head_number = models.BigIntegerField(default=0, help_text="Chain head at the last scan.")
    head_hash = models.CharField(max_length=66, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.vault} @ {self.block_number}"


class ProcessedBlock(models.Model):
    """A scanned block header: the chain the watcher believes in, to notice reorgs against."""

    cursor = models.ForeignKey(ChainCursor, on_delete=models.CASCADE, related_name="blocks")
    number = models.BigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66)
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["cursor", "number"], name="custody_block_once"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.hash[:10]}"


class ChainReorg(models.Model):
    """A reorg the chain watcher rewound over: the audit record and the operators' to-do item.

    Written in the rewind's transaction, before the orphaned ProcessedBlock rows go, so the old
    hashes are kept here. ``credited_deposits`` lists credits whose log left the chain (their
    accounts' withdrawals were frozen in the same transaction); such a reorg stays unresolved
    until an operator records a decision.
    """

    cursor = models.ForeignKey(ChainCursor, on_delete=models.CASCADE, related_name="reorgs")
    detected_at = models.DateTimeField(default=timezone.now)
    ancestor_number = models.BigIntegerField(help_text="Newest scanned block still canonical.")
    ancestor_hash = models.CharField(max_length=66, blank=True)
    depth = models.PositiveIntegerField(
        help_text="Scanned blocks that left the chain (0: only blocks not scanned yet did)."
    )
    old_hashes = models.JSONField(default=list, help_text="Orphaned blocks, oldest first.")
    new_hashes = models.JSONField(
        default=list, help_text="Canonical blocks at the same heights when rewound."
    )
    deposits_orphaned = models.PositiveIntegerField(default=0)
    credited_deposits = models.JSONField(
        default=list,
        blank=True,
        help_text="Credited deposits the reorg removed (never reversed).",
    )
    frozen_accounts = models.JSONField(default=list, blank=True)
    settlements_rechecked = models.JSONField(
        default=list,
        blank=True,
        help_text="Confirmed batches and payouts re-checked on chain.",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=160, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["resolved_at"], name="custody_reorg_resolved")]

    def __str__(self) -> str:
        return f"reorg of depth {self.depth} above block {self.ancestor_number}"

    @property
    def critical(self) -> bool:
        return bool(self.credited_deposits)
