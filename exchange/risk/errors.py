"""Risk errors. Every limit breach has its own stable code; the HTTP status says who can fix it:

- 409 ``market_kill_switch``: the exchange halted new orders in the market (nobody can trade);
- 403 ``market_not_allowed``: the account's tier may not trade the market;
- 422 for every per-account limit (``order_quantity_limit``, ``order_notional_limit``,
  ``open_orders_limit``, ``daily_notional_limit``, ``position_limit``): the request is well formed
  but would take the account over a limit; a smaller order (or fewer open ones) would pass.

Their ``extra`` holds ``limit`` and ``current`` and/or ``requested``: counts as ints, amounts as
decimal strings in the asset's own units (like every amount at the REST edge) with ``asset``
naming it.
"""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict, Forbidden, NotFound


class MarketKillSwitch(Conflict):
    code = "market_kill_switch"


class MarketNotAllowed(Forbidden):
    code = "market_not_allowed"


class RiskLimitExceeded(ApplicationError):
    """The order would take the account over one of its limits."""

    code = "risk_limit"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class OrderQuantityLimit(RiskLimitExceeded):
    code = "order_quantity_limit"


class OrderNotionalLimit(RiskLimitExceeded):
    code = "order_notional_limit"


class OpenOrdersLimit(RiskLimitExceeded):
    code = "open_orders_limit"


class DailyNotionalLimit(RiskLimitExceeded):
    code = "daily_notional_limit"


class PositionLimit(RiskLimitExceeded):
    code = "position_limit"


class AccountNotFound(NotFound):
    code = "account_not_found"


class MarketNotFound(NotFound):
    code = "market_not_found"


ORDER_REJECTIONS = {
    409: (MarketKillSwitch.code,),
    403: (MarketNotAllowed.code,),
    422: tuple(
        cls.code
        for cls in (
            OrderQuantityLimit,
            OrderNotionalLimit,
            OpenOrdersLimit,
            DailyNotionalLimit,
            PositionLimit,
        )
    ),
}
