"""Account reads."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from eth_utils import is_address, to_checksum_address

from exchange.accounts import errors
from exchange.accounts.models import Account, AuthToken
from exchange.accounts.services import TOKEN_PREFIX, token_hash

_MAX_TOKEN_LENGTH = 128


def account_by_address(*, address: str) -> Account | None:
    """A trader by wallet address in any case, or a system account by its name."""
    if address.startswith("system:"):
        return Account.objects.filter(address=address).first()
    if not is_address(address):
        return None
    return Account.objects.filter(address=to_checksum_address(address)).first()


def token_authenticate(token: str, *, now: datetime | None = None) -> tuple[Account, AuthToken]:
    """Resolve a bearer token to its trader account: one indexed query.

    Raises TokenInvalid (unknown or malformed), TokenExpired or TokenRevoked. Usable anywhere a
    token string arrives: the DRF authentication class and websocket consumers.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        raise errors.TokenInvalid()
    row = (
        AuthToken.objects.select_related("account")
        .filter(key_hash=token_hash(token), account__kind=Account.Kind.TRADER)
        .first()
    )
    if row is None:
        raise errors.TokenInvalid()
    if row.revoked_at is not None:
        raise errors.TokenRevoked()
    if row.expires_at <= (now or timezone.now()):
        raise errors.TokenExpired()
    return row.account, row
