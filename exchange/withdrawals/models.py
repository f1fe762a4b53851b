"""Withdrawals, their limits, and per-account destination allowlists.

A Withdrawal's id (a UUID) is everything that names it elsewhere: the Temporal workflow id, the
ledger reference of its hold, release and payout (``withdrawal:<id>``) and, hashed, the vault's
withdrawal id, which pays at most once on chain.

States (``Withdrawal.State``), driven by the withdrawal workflow through exchange.withdrawals
.services; the API and the admin read them:

    pending_approval --approve--> approved --> paying --> submitted --> confirmed
          |  \\--reject / timer / trader cancel--> rejected | expired | cancelled
          (auto-approved withdrawals start at approved)         paying --> failed

``hold_status`` tracks the held funds separately: ``held`` until the payout is confirmed
(``consumed``, moved to system:withdrawals) or the withdrawal ends without paying
(``released``), so a withdrawal that is already rejected but whose release has not run yet still
shows its funds as held.

Limits, per asset (``AssetWithdrawalLimits``; its row is also the lock that serialises the
exchange-wide caps) with per-account overrides (``AccountWithdrawalLimits``, a non-null field
wins). Amounts are base units of the asset; an empty limit is no limit.
"""

from __future__ import annotations

import uuid

from django.db import models

from exchange.money import BaseUnitsField


class Withdrawal(models.Model):
    class State(models.TextChoices):
        PENDING_APPROVAL = "pending_approval"
        APPROVED = "approved"
        PAYING = "paying"
        SUBMITTED = "submitted"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"
        EXPIRED = "expired"
        CANCELLED = "cancelled"
        FAILED = "failed"

    class HoldStatus(models.TextChoices):
        HELD = "held"
        RELEASED = "released"
        CONSUMED = "consumed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.PROTECT, related_name="withdrawals"
    )
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="+")
    amount = BaseUnitsField(help_text="Base units of the asset.")
    destination = models.CharField(max_length=42, help_text="EIP-55 address paid on chain.")
    idempotency_key = models.CharField(max_length=64)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices)
    hold_status = models.CharField(
        max_length=8, choices=HoldStatus.choices, default=HoldStatus.HELD
    )
    # Approved without an admin: what the exchange-wide caps count.
    auto_approved = models.BooleanField(default=False)
    # Why it waits for an admin: above_threshold, exchange_cap_1h, exchange_cap_24h,
    # circuit_breaker. Empty when approved automatically.
    approval_reasons = models.JSONField(default=list, blank=True)
    approval_deadline = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=160, blank=True)
    decision_note = models.TextField(blank=True)
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    confirmations = models.PositiveIntegerField(default=0)
    payout_attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    workflow_started_at = models.DateTimeField(null=True, blank=True)
    # Set by the service inside the transaction that holds the account lock, so creation order
    # per account (and per asset) is lock order: what makes the rolling sums exact.
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["account", "asset", "created_at"], name="withdrawal_account_window"
            ),
            models.Index(fields=["asset", "created_at"], name="withdrawal_asset_window"),
            models.Index(fields=["state", "created_at"], name="withdrawal_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name="withdrawal_idempotency"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="withdrawal_positive"),
        ]

    def __str__(self) -> str:
        return f"withdrawal {self.id}"

    @property
    def needs_approval(self) -> bool:
        return not self.auto_approved


# States whose amount counts against the limits: every withdrawal that is paid, being paid or
# may still be paid. Rejected, expired, cancelled and failed ones never leave the exchange.
COUNTED_STATES = (
    Withdrawal.State.PENDING_APPROVAL,
    Withdrawal.State.APPROVED,
    Withdrawal.State.PAYING,
    Withdrawal.State.SUBMITTED,
    Withdrawal.State.CONFIRMED,
)
# States in which the hold goes back to the account.
RELEASING_STATES = (
    Withdrawal.State.REJECTED,
    Withdrawal.State.EXPIRED,
    Withdrawal.State.CANCELLED,
    Withdrawal.State.FAILED,
)
FINAL_STATES = (Withdrawal.State.CONFIRMED, *RELEASING_STATES)


class WithdrawalTransition(models.Model):
    """Audit trail: every state change, who or what made it, and why."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    actor = models.CharField(max_length=160)
    note = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.withdrawal_id}: {self.from_state or '-'} -> {self.to_state}"


class AssetWithdrawalLimits(models.Model):
    """Withdrawal limits of one asset, and its exchange-wide circuit breaker.

    An asset without a row gets one with the defaults below on its first withdrawal: no limits
    and an auto-approve threshold of 0, so every withdrawal waits for an admin until an operator
    sets the limits.
    """

    asset = models.OneToOneField(
        "markets.Asset",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="withdrawal_limits",
    )
    auto_approve_threshold = BaseUnitsField(
        default=0, help_text="Withdrawals above this many base units wait for an admin."
    )
    account_limit_24h = BaseUnitsField(
        null=True, blank=True, help_text="Per account, rolling 24 hours. Empty: no limit."
    )
    account_limit_30d = BaseUnitsField(
        null=True, blank=True, help_text="Per account, rolling 30 days. Empty: no limit."
    )
    exchange_cap_1h = BaseUnitsField(
        null=True,
        blank=True,
        help_text="Automatic payouts of all accounts, rolling hour. Empty: no cap.",
    )
    exchange_cap_24h = BaseUnitsField(
        null=True,
        blank=True,
        help_text="Automatic payouts of all accounts, rolling 24 hours. Empty: no cap.",
    )
    breaker_tripped_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when a cap tripped: every withdrawal waits for an admin until cleared.",
    )
    breaker_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["asset__symbol"]
        verbose_name = "asset withdrawal limits"
        verbose_name_plural = "asset withdrawal limits"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(auto_approve_threshold__gte=0),
                name="withdrawal_limits_threshold_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"withdrawal limits of asset {self.asset_id}"


class AccountWithdrawalLimits(models.Model):
    """One account's withdrawal limits of one asset; an empty field uses the asset's."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="withdrawal_limits"
    )
    asset = models.ForeignKey("markets.Asset", on_delete=models.CASCADE, related_name="+")
    auto_approve_threshold = BaseUnitsField(null=True, blank=True)
    account_limit_24h = BaseUnitsField(null=True, blank=True)
    account_limit_30d = BaseUnitsField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "asset_id"]
        verbose_name = "account withdrawal limits"
        verbose_name_plural = "account withdrawal limits"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "asset"], name="account_withdrawal_limits_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"withdrawal limits of account {self.account_id} for asset {self.asset_id}"


class WithdrawalAddress(models.Model):
    """An allowlisted destination. Removing one keeps the row (``removed_at``): an account that
    ever allowlisted an address keeps its allowlist enforced, so a stolen session cannot switch
    the allowlist off by emptying it."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.CASCADE, related_name="withdrawal_addresses"
    )
    address = models.CharField(max_length=42)
    label = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()
    usable_from = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "withdrawal address"
        verbose_name_plural = "withdrawal addresses"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "address"],
                condition=models.Q(removed_at__isnull=True),
                name="withdrawal_address_unique_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} -> {self.address}"
