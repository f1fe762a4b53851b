"""A batch the worker's own publisher drops: the socket notices the hole and resends the book,
which then equals GET /api/v1/markets/{symbol}/book; the drop is logged and counted."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from exchange.matching_worker import publish
from exchange.matching_worker.publish import BackgroundPublisher
from exchange.matching_worker.runner import Worker
from exchange.realtime import bus
from exchange.realtime.messages import account_group, balance_event, user_events
from exchange.realtime.publishing import send
from tests.realtime.support import SYMBOL, WAIT, receive
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

WETH = 10**18
USDC = 10**6


def dropped() -> float:
    return lost("market", "dropped")


def in_base_units(levels: list[list[str]]) -> list[list[int]]:
    return [[int(Decimal(p) * USDC), int(Decimal(q) * WETH)] for p, q in levels]


async def test_a_dropped_batch_makes_the_socket_resend_the_book_rest_serves(
    trader, market, sockets, monkeypatch, caplog
) -> None:
    # The publisher's thread stalls on its first batch (Redis slow, say) while the worker
    # commits two more: with room for one waiting batch, the older of those two is dropped.
    entered, go_on = threading.Event(), threading.Event()
    store = publish._store_depth_and_find_live

    async def stalling(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not entered.is_set():
            entered.set()
            assert go_on.wait(WAIT), "the test never let the publisher go on"
        return await store(*args, **kwargs)

    monkeypatch.setattr(publish, "_store_depth_and_find_live", stalling)
    publisher = BackgroundPublisher(max_pending=1)
    worker = Worker(batch_size=50, timer_seconds=3600, publish=publisher.submit)
    seller = await sync_to_async(trader)(weth=4 * WETH)
    place = sync_to_async(lambda *args, **kw: seller.place_order(SYMBOL, *args, **kw))
    before = dropped()
    try:
        socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
        assert (await receive(socket))["event_seq"] == 0

        await place("sell", quantity="1", price="2000")
        await sync_to_async(drain)(worker)  # batch 1: the publisher takes it and stalls
        assert await sync_to_async(entered.wait)(WAIT)
        await place("sell", quantity="1", price="2001")
        await sync_to_async(drain)(worker)  # batch 2: waits
        with caplog.at_level(logging.WARNING, logger=publish.__name__):
            await place("sell", quantity="1", price="2002")
            await sync_to_async(drain)(worker)  # batch 3: batch 2 is dropped for it
        go_on.set()
        assert await sync_to_async(publisher.flush)(WAIT)
    finally:
        go_on.set()
        await sync_to_async(worker._release_all)()
        await sync_to_async(publisher.close)()

    assert dropped() == before + 1
    assert any("dropped the oldest" in r.getMessage() for r in caplog.records)
    first = await receive(socket)
    assert (first["type"], first["price"], first["prev_event_seq"]) == ("level", 2000 * USDC, 0)
    resent = await receive(socket)
    assert (resent["type"], resent["reason"]) == ("snapshot", "gap")
    book = await sync_to_async(seller.request)("GET", f"markets/{SYMBOL}/book")
    assert (resent["seq"], resent["event_seq"]) == (book["seq"], book["event_seq"]) == (3, 6)
    assert resent["asks"] == in_base_units(book["asks"]) == [
        [2000 * USDC, WETH], [2001 * USDC, WETH], [2002 * USDC, WETH],
    ]  # fmt: skip
    assert resent["bids"] == in_base_units(book["bids"]) == []
    # The stream goes on from the new snapshot.
    await place("sell", quantity="1", price="2003")
    worker = Worker(batch_size=50, timer_seconds=3600)
    try:
        await sync_to_async(drain)(worker)
    finally:
        await sync_to_async(worker._release_all)()
    after = await receive(socket)
    assert (after["type"], after["prev_event_seq"]) == ("level", resent["event_seq"])


def lost(stream: str, reason: str) -> float:
    labels = {"stream": stream, "reason": reason}
    return REGISTRY.get_sample_value("clearway_realtime_messages_lost_total", labels) or 0.0


def test_failed_publishes_are_counted_and_logged(monkeypatch, caplog) -> None:
    def unreachable(group: str, message: dict) -> None:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(bus, "group_send", unreachable)
    market_before, balance_before = lost("market", "failed"), lost("balance", "failed")
    depth = {"market": SYMBOL, "seq": 1, "event_seq": 2, "bids": [], "asks": []}
    with caplog.at_level(logging.ERROR):
        publish.publish_now(publish.Batch(SYMBOL, depth, prev_event_seq=0))
        sent = send("balance", account_group(1), user_events([balance_event("USDC", 1, 0, 1)]))
    assert sent is False
    assert lost("market", "failed") == market_before + 1
    assert lost("balance", "failed") == balance_before + 1
    assert [r.levelname for r in caplog.records if "failed" in r.getMessage()] == ["ERROR"] * 2
