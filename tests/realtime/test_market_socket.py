"""/ws/v1/markets/{symbol}: snapshot then events, gap-free across batches, resync, heartbeats."""

from __future__ import annotations

import asyncio
import json
from zlib import crc32

import pytest
from asgiref.sync import sync_to_async

from exchange.matching_worker.publish import book_key, read_depth
from exchange.realtime.messages import market_events, market_group
from exchange.trading.models import Trade
from tests.realtime.support import SYMBOL, receive
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
WETH = 10**18


def apply(book: dict, frame: dict) -> None:
    """A client's book: a level frame sets a price's total; 0 removes it."""
    levels = book["bids" if frame["side"] == "buy" else "asks"]
    if frame["quantity"]:
        levels[frame["price"]] = frame["quantity"]
    else:
        levels.pop(frame["price"], None)


def as_client_book(snapshot: dict) -> dict:
    return {"bids": dict(map(tuple, snapshot["bids"])), "asks": dict(map(tuple, snapshot["asks"]))}


def checksum(book: dict) -> int:
    """A client's CRC32 of its top 10 levels, as docs/API.md specifies it (written from the
    document, not from the server's code)."""
    asks = sorted(book["asks"].items())[:10]
    bids = sorted(book["bids"].items(), reverse=True)[:10]
    return crc32("".join(f"{price}{quantity}" for price, quantity in asks + bids).encode())


async def follow(socket, book: dict, until: int) -> list[dict]:
    """Apply frames to ``book`` until the stream reaches event_seq ``until``, checking each
    frame's position (it follows the previous frame) and checksum (the book after it)."""
    frames = []
    position = book["event_seq"]
    while position < until:
        frame = await receive(socket)
        assert frame["type"] in ("level", "trade"), frame
        assert frame["prev_event_seq"] == position, "a frame names the frame it follows"
        assert frame["event_seq"] > position, "event_seq must strictly increase"
        position = frame["event_seq"]
        frames.append(frame)
        if frame["type"] == "level":
            apply(book, frame)
        assert frame["checksum"] == checksum(book), frame
    return frames


async def test_streams_are_complete_across_batches_for_early_and_late_sockets(
    trader, market, worker, sockets
) -> None:
    seller = await sync_to_async(trader)(weth=3 * WETH)
    buyer = await sync_to_async(trader)(usdc=10_000 * USDC)
    place = sync_to_async(lambda client, *args, **kw: client.place_order(SYMBOL, *args, **kw))
    run = sync_to_async(drain)

    early = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    early_snapshot = await receive(early)
    early_book = {**as_client_book(early_snapshot), "event_seq": early_snapshot["event_seq"]}
    assert early_snapshot["checksum"] == checksum(early_book) == crc32(b"")

    # Batch 1: three asks; batch 2: a bid that takes one level and part of the next.
    first = await place(seller, "sell", quantity="0.5", price="2000")
    await place(seller, "sell", quantity="0.5", price="2001")
    await place(seller, "sell", quantity="1", price="2002")
    await run(worker)
    await place(buyer, "buy", quantity="0.7", price="2001")
    await run(worker)

    # A socket that joins between batches starts from the published snapshot.
    late = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    late_snapshot = await receive(late)
    late_book = {**as_client_book(late_snapshot), "event_seq": late_snapshot["event_seq"]}
    assert late_snapshot["checksum"] == checksum(late_book) != 0
    assert late_snapshot["event_seq"] > 0
    assert late_snapshot["asks"] == [[2_001_000_000, 3 * 10**17], [2_002_000_000, WETH]]

    # Batch 3: a cancel and a resting bid; batch 4: a bid that sweeps what is left.
    await sync_to_async(seller.cancel_order)(first["id"] + 2)
    await place(buyer, "buy", quantity="0.1", price="1990")
    await run(worker)
    await place(buyer, "buy", quantity="0.3", price="2005")
    await run(worker)

    final = await sync_to_async(read_depth)(SYMBOL)
    early_frames = await follow(early, early_book, final["event_seq"])
    late_frames = await follow(late, late_book, final["event_seq"])

    # Both clients' books, built from snapshot + deltas, are the worker's book.
    expected = as_client_book(final)
    assert {"bids": early_book["bids"], "asks": early_book["asks"]} == expected
    assert {"bids": late_book["bids"], "asks": late_book["asks"]} == expected
    assert expected == {"bids": {1_990_000_000: 10**17}, "asks": {}}

    # The late socket saw exactly the early socket's frames after its snapshot.
    # (prev_event_seq aside: each connection's first frame follows its own snapshot).
    def events(frames: list[dict]) -> list[dict]:
        return [{k: v for k, v in f.items() if k != "prev_event_seq"} for f in frames]

    assert events(late_frames) == events(
        [f for f in early_frames if f["event_seq"] > late_snapshot["event_seq"]]
    )
    # Every trade reached the stream, in order.
    trade_ids = await sync_to_async(
        lambda: list(Trade.objects.order_by("id").values_list("trade_id", flat=True))
    )()
    assert [f["trade_id"] for f in early_frames if f["type"] == "trade"] == trade_ids
    assert len(trade_ids) == 3

    # REST agrees with where the socket is.
    book = await sync_to_async(buyer.request)("GET", f"markets/{SYMBOL}/book")
    assert (book["seq"], book["event_seq"]) == (final["seq"], early_frames[-1]["event_seq"])
    assert book["bids"] == [["1990", "0.1"]] and book["asks"] == []
    trades = await sync_to_async(buyer.request)("GET", f"markets/{SYMBOL}/trades")
    assert [t["trade_id"] for t in trades["results"]] == trade_ids[::-1]


async def test_events_at_or_below_the_snapshot_are_dropped(
    trader, market, worker, sockets, channel_layer
) -> None:
    seller = await sync_to_async(trader)(weth=WETH)
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(drain)(worker)
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    snapshot = await receive(socket)
    assert (snapshot["event_seq"], snapshot["asks"]) == (2, [[2_000_000_000, 5 * 10**17]])

    # What was published while the snapshot was read waits in the socket's channel: only the
    # part after the snapshot may reach the client.
    old = {"type": "level", "event_seq": 2, "seq": 1, "side": "sell", "price": 2_000_000_000,
           "quantity": 5 * 10**17, "checksum": snapshot["checksum"]}  # fmt: skip
    new = {**old, "event_seq": 4, "seq": 2, "quantity": 0, "checksum": 0}
    await channel_layer.group_send(market_group(SYMBOL), market_events(0, 4, [old, new]))
    assert await receive(socket) == {**new, "prev_event_seq": 2}


async def test_a_missed_batch_makes_the_server_resend_the_snapshot(
    trader, market, worker, sockets, channel_layer
) -> None:
    seller = await sync_to_async(trader)(weth=WETH)
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(drain)(worker)
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    assert (await receive(socket))["event_seq"] == 2

    level = {"type": "level", "seq": 9, "side": "sell", "price": 2_000_000_000, "quantity": 1,
             "checksum": 1}  # fmt: skip
    # A batch covering events 5..6 arrives while the socket is at 2: events 3..4 were lost.
    await channel_layer.group_send(
        market_group(SYMBOL), market_events(4, 6, [{**level, "event_seq": 6}])
    )
    resent = await receive(socket)
    assert (resent["type"], resent["reason"], resent["event_seq"]) == ("snapshot", "gap", 2)
    # A batch that continues from the socket's position is delivered as usual.
    await channel_layer.group_send(
        market_group(SYMBOL), market_events(2, 3, [{**level, "event_seq": 3}])
    )
    assert await receive(socket) == {**level, "event_seq": 3, "prev_event_seq": 2}


async def test_resync_on_request_and_bad_frames_keep_the_socket(market, sockets) -> None:
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    assert (await receive(socket))["reason"] == "connect"
    await socket.send_to(text_data="not json")
    assert (await receive(socket))["code"] == "bad_request"
    await socket.send_json_to({"op": "dance"})
    assert (await receive(socket))["code"] == "bad_request"
    await socket.send_json_to({"op": "ping"})
    assert await receive(socket) == {"type": "pong"}
    await socket.send_json_to({"op": "resync"})
    again = await receive(socket)
    assert (again["type"], again["reason"], again["event_seq"]) == ("snapshot", "requested", 0)


async def test_heartbeats_carry_the_stream_position(
    trader, market, worker, sockets, settings
) -> None:
    settings.REALTIME_HEARTBEAT_SECONDS = 0.05
    seller = await sync_to_async(trader)(weth=WETH)
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(drain)(worker)
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    assert (await receive(socket))["event_seq"] == 2
    assert await receive(socket, heartbeats=True) == {"type": "heartbeat", "event_seq": 2}


async def test_a_stale_snapshot_from_another_database_is_not_served(
    market, sockets, depth_store
) -> None:
    # Left by an earlier deployment or test run: ahead of this database's cursor.
    bogus = {"market": SYMBOL, "seq": 40, "event_seq": 90, "bids": [[1, 1]], "asks": []}
    depth_store.set(book_key(SYMBOL), json.dumps(bogus))
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    snapshot = await receive(socket)
    assert (snapshot["event_seq"], snapshot["bids"]) == (0, [])


@pytest.mark.parametrize("symbol", ["DOGE-USDC", "weth-usdc", "x" * 200])
async def test_an_unknown_market_is_closed_with_a_reason(market, sockets, symbol) -> None:
    socket = await sockets.open(f"/ws/v1/markets/{symbol}")
    error = await receive(socket)
    close = await socket.receive_output(timeout=10)
    assert error["code"] == "market_not_found"
    assert (close["type"], close["code"], close["reason"]) == (
        "websocket.close", 4404, "market_not_found",
    )  # fmt: skip


@pytest.mark.parametrize("path", [f"/ws/v1/markets/{SYMBOL}", "/ws/v1/user"])
@pytest.mark.parametrize("origin", [b"http://evil.example", b"https://localhost.evil.example"])
async def test_a_foreign_origin_is_refused(market, sockets, path, origin) -> None:
    assert await sockets.refused(path, headers=[(b"origin", origin)])


async def test_an_idle_socket_outlives_the_layers_blocking_receive(market, sockets) -> None:
    """Idle for longer than channels-redis's 5 s blocking receive (see conftest.py)."""
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    assert (await receive(socket))["type"] == "snapshot"
    await asyncio.sleep(7)
    await socket.send_json_to({"op": "ping"})
    assert await receive(socket) == {"type": "pong"}
