"""Account writes: nonces, sign-in, tokens, system accounts."""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from eth_utils import to_checksum_address

from exchange.accounts import errors, signin
from exchange.accounts.models import SYSTEM_ACCOUNTS, Account, AuthToken, SiweNonce

NONCE_LENGTH = 32
TOKEN_PREFIX = "cw_"


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits: a fast unsalted hash suffices to make a leaked table useless.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once, never stored
    expires_at: datetime
    account: Account
    row: AuthToken

    @property
    def address(self) -> str:
        return self.account.address


def nonce_issue(*, now: datetime | None = None) -> SiweNonce:
    """A fresh single-use nonce: EIP-4361 wants at least 8 alphanumerics; 32 give ~190 bits."""
    now = now or timezone.now()
    return SiweNonce.objects.create(
        value=get_random_string(NONCE_LENGTH, string.ascii_letters + string.digits),
        issued_at=now,
        expires_at=now + signin.NONCE_TTL,
    )


def nonce_purge_expired(
    *, now: datetime | None = None, grace: timedelta = timedelta(days=1)
) -> int:
    """Delete nonces expired for longer than ``grace`` (a periodic job). Returns how many."""
    now = now or timezone.now()
    deleted, _ = SiweNonce.objects.filter(expires_at__lt=now - grace).delete()
    return deleted


def _nonce_consume(*, value: str, now: datetime) -> None:
    # One conditional UPDATE: of two concurrent logins with one nonce, the second blocks on the
    # row lock, re-checks used_at after the first commits and matches nothing.
    consumed = SiweNonce.objects.filter(
        value=value, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if consumed:
        return
    nonce = SiweNonce.objects.filter(value=value).first()
    if nonce is None:
        raise errors.SiweNonceUnknown("The nonce was not issued by this server.")
    if nonce.used_at is not None:
        raise errors.SiweNonceReused("The nonce was already used.")
    raise errors.SiweNonceExpired("The nonce has expired; ask for a new one.")


def trader_get_or_create(*, address: str) -> Account:
    """The trader account for a wallet address (any case), created on first sight."""
    account, _ = Account.objects.get_or_create(
        address=to_checksum_address(address), defaults={"kind": Account.Kind.TRADER}
    )
    return account


def system_account(name: str) -> Account:
    """A system account by its well-known name (``system:fees``...), created if missing.

    A data migration creates them too; this makes them safe to use after a test flush and is
    race-safe (get_or_create retries on the unique address).
    """
    if name not in SYSTEM_ACCOUNTS:
        raise ValueError(f"unknown system account {name!r}; known: {', '.join(SYSTEM_ACCOUNTS)}")
    account, _ = Account.objects.get_or_create(address=name, defaults={"kind": Account.Kind.SYSTEM})
    return account


def token_create(*, account: Account, now: datetime | None = None) -> IssuedToken:
    now = now or timezone.now()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.AUTH_TOKEN_TTL_SECONDS)
    row = AuthToken.objects.create(
        account=account, key_hash=token_hash(token), created_at=now, expires_at=expires_at
    )
    return IssuedToken(token=token, expires_at=expires_at, account=account, row=row)


@transaction.atomic
def siwe_login(*, message: str, signature: str, now: datetime | None = None) -> IssuedToken:
    """Verify a signed EIP-4361 message and sign its address in, creating the account once.

    The nonce is consumed last, in the same transaction that creates the account and the token:
    a rejected message burns no nonce and leaves no row behind.
    """
    now = now or timezone.now()
    expected = signin.Expected(
        domain=settings.SIWE_DOMAIN, uri=settings.SIWE_URI, chain_id=settings.CHAIN_ID
    )
    parsed = signin.verify(message, signature, expected=expected, now=now)
    _nonce_consume(value=parsed.nonce, now=now)
    account = trader_get_or_create(address=parsed.address)
    return token_create(account=account, now=now)


def token_revoke(*, token: AuthToken, now: datetime | None = None) -> None:
    AuthToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )


def token_purge_expired(
    *, now: datetime | None = None, grace: timedelta = timedelta(days=7)
) -> int:
    """Delete tokens expired for longer than ``grace`` (a periodic job). Returns how many."""
    now = now or timezone.now()
    deleted, _ = AuthToken.objects.filter(expires_at__lt=now - grace).delete()
    return deleted
