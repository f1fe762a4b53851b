from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from exchange.accounts.models import Account

if TYPE_CHECKING:  # rest_framework.views imports this module through DRF's default settings
    from rest_framework.views import APIView


class IsTrader(BasePermission):
    """The request carries a valid bearer token of a trader account."""

    message = "A trader's bearer token is required."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return isinstance(user, Account) and user.is_trader and request.auth is not None
