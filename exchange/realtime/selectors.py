"""Market data reads shared by the websocket consumers and the REST edge (base units).

The order book comes from the depth snapshot the matching worker stores in Redis after each
committed batch. Redis is a cache of the database: a snapshot is used only when it matches the
market cursor the worker advanced in that same commit; otherwise (no snapshot yet, Redis down
or flushed, a snapshot left by another database, or the instant between the worker's commit
and its publish) the book is aggregated from the open orders at the cursor's position.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from django.db import transaction
from django.db.models import QuerySet, Sum

from exchange.markets.models import Market
from exchange.matching import Side
from exchange.matching_worker.publish import DEPTH_LEVELS, read_depth
from exchange.trading.models import MarketCursor, Order, Trade

log = logging.getLogger(__name__)

SYMBOL = re.compile(r"[A-Z0-9]{2,16}-[A-Z0-9]{2,16}")
RESTING = (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED)
# Optimistic reads of the database book before one that briefly locks the cursor row.
_OPTIMISTIC_READS = 3

Book = dict[str, Any]  # {market, seq, event_seq, bids: [[price, qty]], asks: [[price, qty]]}


def market_get(*, symbol: str) -> Market | None:
    if not SYMBOL.fullmatch(symbol):
        return None
    return Market.objects.select_related("base", "quote").filter(symbol=symbol).first()


def book_get(*, market: Market, depth: int = DEPTH_LEVELS) -> Book:
    """The top ``depth`` levels a side, best first, with the (seq, event_seq) they are at."""
    try:
        published = read_depth(market.symbol)
    except redis.RedisError:
        log.warning("depth snapshot for %s unreadable; using the database", market.symbol)
        published = None
    # Read after Redis: the worker publishes after it commits, so a current snapshot
    # matches the cursor read here exactly.
    if published is not None and (published["seq"], published["event_seq"]) == _position(market):
        book = published
    else:
        book = _book_from_database(market)
    return {
        "market": market.symbol,
        "seq": book["seq"],
        "event_seq": book["event_seq"],
        "bids": book["bids"][:depth],
        "asks": book["asks"][:depth],
    }


def trade_list(*, market: Market) -> QuerySet[Trade]:
    """The market's trades, newest first."""
    return Trade.objects.filter(market=market).order_by("-id")


def _position(market: Market, cursors: QuerySet[MarketCursor] | None = None) -> tuple[int, int]:
    cursors = MarketCursor.objects.filter(market=market) if cursors is None else cursors
    row = cursors.values_list("applied_sequence", "event_sequence").first()
    return (row[0], row[1]) if row else (0, 0)


def _book_from_database(market: Market) -> Book:
    """The resting orders aggregated by price, consistent with the cursor.

    Orders leave the book only in the worker's commits, which always move the cursor: a cursor
    unchanged across the read means the levels belong to it. Under a busy worker the last
    attempt holds the cursor row (delaying the worker's next commit by this one read).
    """
    for attempt in range(_OPTIMISTIC_READS + 1):
        locked = attempt == _OPTIMISTIC_READS
        with transaction.atomic():
            cursors = MarketCursor.objects.filter(market=market)
            if locked:
                cursors = cursors.select_for_update(no_key=True)
            seq, event_seq = _position(market, cursors)
            bids = _levels(market, Side.BUY, "-price")
            asks = _levels(market, Side.SELL, "price")
            if locked or _position(market) == (seq, event_seq):
                break
    return {"seq": seq, "event_seq": event_seq, "bids": bids, "asks": asks}


def _levels(market: Market, side: Side, ordering: str) -> list[list[int]]:
    rows = (
        Order.objects.live()
        .filter(market=market, side=side.value, status__in=RESTING, remaining_quantity__gt=0)
        .values("price")
        .annotate(total=Sum("remaining_quantity"))
        .order_by(ordering)[:DEPTH_LEVELS]
    )
    return [[int(row["price"]), int(row["total"])] for row in rows]
