"""What the engine promises its one adapter: sequencing, purity, reads, the documented example."""

from __future__ import annotations

import ast
import doctest
import socket
import time
from pathlib import Path

import pytest

import exchange.matching
from exchange.matching import (
    CancelOrder,
    CommandError,
    MatchingEngine,
    PlaceOrder,
    SequenceError,
    Side,
)

from .support import SPEC, Harness, book_with


def test_package_docstring_example_runs():
    result = doctest.testmod(exchange.matching, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10
    assert result.failed == 0


def place(seq, order_id="o", timestamp=1):
    return PlaceOrder(
        seq=seq, timestamp=timestamp, order_id=order_id, account=1, side=Side.BUY, price=5,
        quantity=1,
    )  # fmt: skip


def test_sequence_numbers_must_increase_and_gaps_are_allowed():
    engine = MatchingEngine(SPEC)
    engine.submit(place(5, "a"))
    engine.submit(place(9, "b"))  # gaps are fine: the log may interleave markets
    before = engine.snapshot()
    for bad in (9, 3, 0, "10", 10.0, True):
        with pytest.raises(SequenceError):
            engine.submit(place(bad, "c"))
    assert engine.snapshot() == before  # nothing changed
    assert engine.last_seq == 9


def test_first_sequence_number_must_be_positive():
    with pytest.raises(SequenceError):
        MatchingEngine(SPEC).submit(place(0))


def test_non_commands_and_bad_timestamps_raise_before_changing_anything():
    engine = MatchingEngine(SPEC)
    with pytest.raises(CommandError):
        engine.submit({"type": "place"})  # type: ignore[arg-type]
    with pytest.raises(CommandError):
        engine.submit(place(1, timestamp=1.5))
    assert engine.last_seq == 0 and engine.event_seq == 0


def test_event_sequence_is_per_market_and_gapless_across_commands():
    h = book_with(bids=[(100, [5])], asks=[(101, [5])])
    seen = []
    for events in (h.sell("s", 7, 100), h.cancel("zz"), h.buy("b", 1, 90)):
        seen.extend(e.event_seq for e in events)
    assert seen == list(range(seen[0], seen[0] + len(seen)))
    assert h.engine.event_seq == seen[-1]


def test_submit_reads_no_clock_and_does_no_io(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the engine must not read the clock or open sockets")

    for name in ("time", "time_ns", "monotonic", "perf_counter"):
        monkeypatch.setattr(time, name, forbidden)
    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr("builtins.open", forbidden)
    h = book_with(bids=[(100, [5])], asks=[(101, [5])])
    fills = [e for e in h.buy("b", 8, 101, expires_at=10**12) if e.type == "fill"]
    cancelled = h.cancel("b")
    h.expire(advance=10)
    assert [f.quantity for f in fills] == [5]  # it did match, with every clock patched away
    assert "cancelled" in [e.type for e in cancelled]


# The engine's whole import graph: the standard library's pure modules and sortedcontainers.
# Anything that reads a clock, a socket, a file or a database has no business here.
ENGINE_IMPORTS = {"__future__", "collections", "contextlib", "dataclasses", "enum", "heapq",
                  "typing", "sortedcontainers", "exchange"}  # fmt: skip


def test_the_engine_imports_nothing_that_does_io_or_reads_the_clock():
    package = Path(__file__).resolve().parents[2] / "exchange" / "matching"
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported <= ENGINE_IMPORTS, imported - ENGINE_IMPORTS


def test_matching_is_independent_of_wall_clock_time():
    # The same commands a "day" apart in wall time give the same events.
    a = Harness()
    b = Harness()
    for h in (a, b):
        h.buy("x", 2, 100, expires_at=h.now + 3)
        h.sell("y", 1, 100)
    assert [e.to_dict() for e in a.expire(advance=5)] == [e.to_dict() for e in b.expire(advance=5)]


def test_reads():
    h = book_with(bids=[(100, [5]), (98, [1])], asks=[(103, [2])])
    assert h.engine.best_bid() == (100, 5)
    assert h.engine.best_ask() == (103, 2)
    assert h.engine.depth(1).bids == ((100, 5),)
    order = h.engine.get_order("B1")
    assert (order.order_id, order.account, order.side, order.price, order.remaining) == (
        "B1",
        "mB1",
        Side.BUY,
        100,
        5,
    )
    assert h.engine.get_order("missing") is None
    assert [o.order_id for o in h.engine.open_orders()] == ["B1", "B2", "A1"]
    assert order.to_dict()["side"] == "buy"


def test_cancel_command_rejection_carries_the_command_kind():
    engine = MatchingEngine(SPEC)
    events = engine.submit(CancelOrder(seq=1, timestamp=1, order_id=[1], account=1))  # type: ignore[arg-type]
    assert events[0].reason.value == "unknown_order"
    assert events[0].order_id is None
