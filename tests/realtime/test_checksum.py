"""The book checksum: docs/API.md's worked example, and the worker's level mirror that stamps
each market event with it, against the engine's own book."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.matching import LevelChanged, Side
from exchange.matching_worker.levels import BookLevels
from exchange.realtime.messages import book_checksum
from tests.matching.support import Harness, book_with

ASKS = [[2_001_000_000, 3 * 10**17], [2_002_000_000, 10**18]]
BIDS = [[1_990_000_000, 10**17]]


def test_the_worked_example_of_the_api_document() -> None:
    assert book_checksum(BIDS, ASKS) == 1861020410 == 0x6EECEAFA
    assert book_checksum(BIDS, ASKS[1:]) == 2628174198
    assert book_checksum([], []) == 0


def test_only_the_top_ten_levels_count_asks_first() -> None:
    asks = [[100 + i, 1] for i in range(12)]
    bids = [[99 - i, 1] for i in range(12)]
    assert book_checksum(bids, asks) == book_checksum(bids[:10], asks[:10])
    assert book_checksum(bids, asks) != book_checksum(asks, bids)


COMMANDS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "cancel"]),
        st.integers(min_value=80, max_value=120),  # price (ticks): more than 10 levels a side
        st.integers(min_value=1, max_value=12),  # quantity (lots)
        st.integers(min_value=0, max_value=60),  # which earlier order to cancel
    ),
    max_size=60,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(commands=COMMANDS)
def test_the_mirror_follows_the_engine_level_event_by_level_event(commands) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = book_with(bids=[(90, [5]), (89, [3])], asks=[(110, [4])])
    levels = BookLevels(harness.engine, tick=1, lot=1)  # the engine's units
    placed: list[str] = []
    for n, (kind, price, quantity, pick) in enumerate(commands):
        if kind == "cancel":
            if not placed:
                continue
            events = harness.cancel(placed[pick % len(placed)], account=f"a{pick % len(placed)}")
        else:
            order_id = f"o{n}"
            side = Side.BUY if kind == "buy" else Side.SELL
            events = harness.place(order_id, side, quantity, price, account=f"a{len(placed)}")
            placed.append(order_id)
        for event in events:
            if isinstance(event, LevelChanged):
                levels.apply(event.side is Side.BUY, event.price, event.quantity)
        depth = harness.engine.depth(50)
        bids, asks = [list(level) for level in depth.bids], [list(level) for level in depth.asks]
        assert levels.top(50) == (bids, asks)
        assert levels.checksum == book_checksum(bids, asks)
