"""Accounts: traders (signed in with their wallet) and the ledger's system counterparties.

Traders are not Django users; Django users are staff who use the admin. A trader's identity is
the EIP-55 checksummed address it proved control of with a Sign-In with Ethereum message.

System accounts have no wallet. Their ``address`` is a well-known name (see ``SYSTEM_ACCOUNTS``)
so one unique column identifies every ledger account; a CHECK constraint keeps the two kinds'
address shapes apart.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models

# The ledger's counterparties. Deposits are funded from system:deposits (which goes negative by
# exactly what the exchange owes for deposits), paid withdrawals go to system:withdrawals, and
# trading fees accrue to system:fees.
SYSTEM_DEPOSITS = "system:deposits"
SYSTEM_WITHDRAWALS = "system:withdrawals"
SYSTEM_FEES = "system:fees"
SYSTEM_ACCOUNTS = (SYSTEM_DEPOSITS, SYSTEM_WITHDRAWALS, SYSTEM_FEES)

TRADER_ADDRESS_REGEX = r"^0x[0-9a-fA-F]{40}$"
DEFAULT_TIER = "standard"


class Account(models.Model):
    class Kind(models.TextChoices):
        TRADER = "trader"
        SYSTEM = "system"

    address = models.CharField(
        max_length=64,
        unique=True,
        help_text="EIP-55 0x address (trader) or 'system:<name>'.",
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TRADER)
    tier = models.CharField(
        max_length=32, default=DEFAULT_TIER, help_text="Risk tier: selects the market allowlist."
    )
    withdrawals_frozen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # An Account is what DRF puts in request.user for a bearer token; permission classes and
    # throttles only ask these two questions of it.
    is_authenticated = True
    is_anonymous = False

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="trader", address__regex=TRADER_ADDRESS_REGEX)
                    | models.Q(kind="system", address__startswith="system:")
                ),
                name="account_address_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def is_trader(self) -> bool:
        return self.kind == self.Kind.TRADER


class SiweNonce(models.Model):
    """A server-issued, single-use nonce for one Sign-In with Ethereum message."""

    value = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.value


class AuthToken(models.Model):
    """A bearer token. Only the SHA-256 of the token is stored: a database leak leaks no session."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.pk} for {self.account_id}"

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now
