"""The chaos soak's own logic (bench/chaos.py, bench/chaos_load.py), without a stack: the seeded
fault schedule and the websocket follower's gap rule and checksum."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from bench.chaos import KINDS, PER_10_MINUTES, fault_schedule
from bench.chaos_load import Follower, checksum


def test_a_seed_replays_the_same_schedule_with_every_fault_kind() -> None:
    first = fault_schedule(7, minutes=2, confirmation_depth=3)
    assert first == fault_schedule(7, minutes=2, confirmation_depth=3)
    assert first != fault_schedule(8, minutes=2, confirmation_depth=3)
    assert {f.kind for f in first} == set(KINDS)
    assert [f.at for f in first] == sorted(f.at for f in first)
    long = fault_schedule(7, minutes=10, confirmation_depth=3)
    assert Counter(f.kind for f in long) == PER_10_MINUTES
    assert {f.depth for f in long if f.kind == "reorg"} <= set(range(1, 6))
    assert all(10 <= f.seconds <= 30 for f in long if f.kind == "cut_rpc")


class Socket:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


def frames(follower: Follower, socket: Socket, *items: dict) -> None:
    async def feed() -> None:
        for item in items:
            await follower.handle(item, socket)

    asyncio.run(feed())


def snapshot(event_seq: int, bids: dict[int, int], asks: dict[int, int]) -> dict:
    return {"type": "snapshot", "reason": "connect", "event_seq": event_seq,
            "bids": [[p, q] for p, q in bids.items()], "asks": [[p, q] for p, q in asks.items()],
            "checksum": checksum(bids, asks)}  # fmt: skip


def level(prev: int, event_seq: int, side: str, price: int, quantity: int, book: dict) -> dict:
    return {"type": "level", "prev_event_seq": prev, "event_seq": event_seq, "side": side,
            "price": price, "quantity": quantity, "checksum": checksum(*book.values())}  # fmt: skip


def test_the_follower_applies_a_chained_stream_and_resyncs_on_a_gap() -> None:
    follower, socket = Follower("ws://unused", "http://unused"), Socket()
    frames(follower, socket, snapshot(5, {100: 1}, {110: 2}))
    frames(follower, socket, level(5, 7, "buy", 101, 3, {"b": {100: 1, 101: 3}, "a": {110: 2}}))
    assert (follower.bids, follower.last, socket.sent) == ({100: 1, 101: 3}, 7, [])

    # prev_event_seq 8 but the last applied is 7: a frame was lost in between.
    frames(follower, socket, level(8, 9, "sell", 110, 0, {"b": {}, "a": {}}))
    assert socket.sent == [{"op": "resync"}]
    assert follower.counts["gaps detected"] == 1
    assert follower.asks == {110: 2}  # nothing applied until the snapshot
    frames(follower, socket, level(9, 10, "sell", 111, 1, {"b": {}, "a": {}}))
    assert follower.asks == {110: 2}
    frames(follower, socket, snapshot(10, {100: 1}, {111: 1}))
    assert (follower.asks, follower.last, follower.waiting) == ({111: 1}, 10, False)
    assert follower.inconsistent == []


def test_a_chained_frame_whose_checksum_disagrees_is_reported_as_a_server_error() -> None:
    follower, socket = Follower("ws://unused", "http://unused"), Socket()
    frames(follower, socket, snapshot(5, {100: 1}, {}))
    wrong = level(5, 6, "buy", 100, 2, {"b": {100: 1}, "a": {}})  # checksum of the old book
    frames(follower, socket, wrong)
    assert socket.sent == [{"op": "resync"}]
    assert follower.inconsistent == ["level at 6: checksum differs"]
