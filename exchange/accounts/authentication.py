"""Bearer-token authentication for DRF views and websocket consumers.

Views that serve traders set::

    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)

``request.user`` is then the trader's Account and ``request.auth`` its AuthToken row.
A request without an ``Authorization: Bearer`` header is anonymous here (IsTrader answers 401
``not_authenticated``); a bad token answers 401 ``token_invalid``, ``token_expired`` or
``token_revoked``.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from exchange.accounts.models import Account, AuthToken
from exchange.accounts.selectors import token_authenticate

KEYWORD = "Bearer"


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Account, AuthToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode("latin-1").lower() != KEYWORD.lower():
            return None  # another scheme, or none: let other authenticators or IsTrader answer
        if len(parts) != 2:
            raise AuthenticationFailed("Expected 'Authorization: Bearer <token>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The bearer token must be ASCII.") from None
        return token_authenticate(token)

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) with a challenge when authentication fails.
        return f'{KEYWORD} realm="api"'


async def aauthenticate_token(token: str) -> tuple[Account, AuthToken]:
    """token_authenticate for async code (Channels consumers), e.g. on websocket connect.

    Raises the same TokenInvalid / TokenExpired / TokenRevoked errors.
    """
    return await database_sync_to_async(token_authenticate)(token)
