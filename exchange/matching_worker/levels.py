"""The book's aggregated levels as the market stream's level events leave them, to stamp each
market event with the checksum of the top levels after it (exchange.realtime.messages).

The engine reports a command's events after the command: its own book is already past the
intermediate states a client goes through while applying them one by one. This mirror goes
through the same states as the client, one level event at a time.
"""

from __future__ import annotations

from itertools import islice

from sortedcontainers import SortedDict

from exchange.matching import MatchingEngine
from exchange.realtime.messages import CHECKSUM_LEVELS, book_checksum


class BookLevels:
    """price (ticks) -> total (lots) per side, and the checksum of the current top levels."""

    __slots__ = ("asks", "bids", "checksum", "lot", "tick")

    def __init__(self, engine: MatchingEngine, tick: int, lot: int) -> None:
        book = engine.book
        self.bids = SortedDict({price: level.total for price, level in book.bids.items()})
        self.asks = SortedDict({price: level.total for price, level in book.asks.items()})
        self.tick, self.lot = tick, lot
        self.checksum = self._compute()

    def apply(self, is_bid: bool, price: int, quantity: int) -> int:
        """Set a level's total (0 removes it); the checksum after it."""
        levels = self.bids if is_bid else self.asks
        # Levels better than ``price``: a change below the top levels leaves the checksum.
        better = len(levels) - levels.bisect_right(price) if is_bid else levels.bisect_left(price)
        if quantity:
            levels[price] = quantity
        else:
            levels.pop(price, None)
        if better < CHECKSUM_LEVELS:
            self.checksum = self._compute()
        return self.checksum

    def top(self, count: int = CHECKSUM_LEVELS) -> tuple[list[list[int]], list[list[int]]]:
        """The best ``count`` levels a side in base units: (bids, asks)."""
        tick, lot = self.tick, self.lot
        bids = [[p * tick, self.bids[p] * lot] for p in islice(reversed(self.bids), count)]
        asks = [[p * tick, self.asks[p] * lot] for p in islice(self.asks, count)]
        return bids, asks

    def _compute(self) -> int:
        return book_checksum(*self.top())
