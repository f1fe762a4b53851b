"""Order enums and the stable reason codes carried by events.

Every enum is a ``StrEnum`` whose value is the lowercase snake_case string written to the command
log, the event log and websocket payloads; renaming a value is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"  # rests until filled, cancelled or expired
    IOC = "ioc"  # takes what it can at arrival, remainder cancelled
    FOK = "fok"  # fills completely at arrival or is rejected, never rests
    POST_ONLY = "post_only"  # rests like GTC; rejected (never repriced) if it would take


class SelfTradePrevention(StrEnum):
    """What happens when a taker would trade against a resting order of the same account.

    The taker's mode decides (as on Binance and Coinbase); the maker's mode is not consulted.
    """

    CANCEL_TAKER = "cancel_taker"  # cancel the taker's remainder, leave the maker
    CANCEL_MAKER = "cancel_maker"  # cancel the maker, keep matching the taker
    CANCEL_BOTH = "cancel_both"  # cancel the maker and the taker's remainder
    # Cancel the smaller of the two and decrement the larger by the smaller quantity (both when
    # equal). A decrement keeps the order's time priority.
    DECREMENT_AND_CANCEL = "decrement_and_cancel"


class CancelReason(StrEnum):
    USER = "user"  # cancel or cancel-all command
    IOC_REMAINDER = "ioc_remainder"  # unfilled remainder of an IOC limit order
    MARKET_REMAINDER = "market_remainder"  # unfilled remainder of a market order
    SELF_TRADE = "self_trade_prevention"  # cancelled or decremented by self-trade prevention
    EXPIRED = "expired"  # its expires_at was reached by a command's timestamp


class RejectReason(StrEnum):
    """Why a command was rejected. The single list of reject codes, shared with the trading API.

    A rejected command changes nothing in the book.
    """

    # Field validation (also returned by ``validate_order`` / ``validate_replace`` at the API edge).
    INVALID_ORDER_ID = "invalid_order_id"  # not an int or a str
    INVALID_ACCOUNT = "invalid_account"  # not an int or a str
    INVALID_SIDE = "invalid_side"
    INVALID_ORDER_TYPE = "invalid_order_type"
    INVALID_TIME_IN_FORCE = "invalid_time_in_force"  # unknown, or GTC/post-only on a market order
    INVALID_SELF_TRADE_PREVENTION = "invalid_self_trade_prevention"
    INVALID_PRICE = "invalid_price"  # not a positive int, above max_price, or missing on a limit
    INVALID_QUANTITY = "invalid_quantity"  # not a positive int
    QUANTITY_BELOW_MIN = "quantity_below_min"
    QUANTITY_ABOVE_MAX = "quantity_above_max"
    INVALID_EXPIRY = "invalid_expiry"  # expires_at not a positive int
    EXPIRED = "expired"  # expires_at is at or before the command's timestamp
    # Unit conversion at the REST edge (``MarketSpec.price_to_ticks`` / ``quantity_to_lots``).
    PRICE_NOT_ON_TICK = "price_not_on_tick"
    QUANTITY_NOT_ON_LOT = "quantity_not_on_lot"
    # Book state, decided by the engine only.
    DUPLICATE_ORDER_ID = "duplicate_order_id"  # an open order already has this id
    POST_ONLY_WOULD_TAKE = "post_only_would_take"
    FOK_NOT_FILLED = "fok_not_filled"
    UNKNOWN_ORDER = "unknown_order"  # not open (never seen, done) or owned by another account
    INVALID_REPLACE = "invalid_replace"  # neither a new price nor a new quantity
    QUANTITY_NOT_ABOVE_FILLED = "quantity_not_above_filled"  # replace total <= already filled


REJECT_REASONS: tuple[str, ...] = tuple(r.value for r in RejectReason)
