"""Websocket test helpers: sockets on the real ASGI application, the in-process worker and a
Redis database of this process's own for the worker's depth snapshots."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import pytest_asyncio
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from exchange.asgi import application
from exchange.matching_worker.publish import book_key
from exchange.matching_worker.runner import Worker
from tests.realtime.schemas import MARKET_FRAME, USER_FRAME, check

SYMBOL = "WETH-USDC"
ORIGIN = (b"origin", b"http://localhost")
WAIT = 10  # seconds to wait for a frame that must come (a bound, never an assertion)


@pytest.fixture
def depth_store(settings) -> Iterator[redis.Redis]:
    """The worker stores its depth snapshot under a fixed key (clearway:book:{symbol}) that
    other test processes on this machine write too: give this process a Redis database of its
    own and start every test without a snapshot, as a fresh deployment would."""
    parts = urlsplit(settings.REDIS_URL)
    settings.REDIS_URL = urlunsplit(parts._replace(path=f"/{1 + os.getpid() % 15}"))
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(book_key(SYMBOL))
    yield client
    client.delete(book_key(SYMBOL))
    client.close()


@pytest.fixture
def worker() -> Iterator[Worker]:
    worker = Worker(batch_size=50, timer_seconds=3600)
    yield worker
    worker._release_all()


class Sockets:
    """Opens websockets on exchange.asgi.application and closes them all at teardown."""

    def __init__(self) -> None:
        self.opened: list[WebsocketCommunicator] = []

    async def open(
        self, path: str, *, headers: list[tuple[bytes, bytes]] | None = None, origin: bool = True
    ) -> WebsocketCommunicator:
        socket = WebsocketCommunicator(
            application, path, headers=([ORIGIN] if origin else []) + (headers or [])
        )
        self.opened.append(socket)
        connected, _ = await socket.connect(timeout=WAIT)
        assert connected, f"{path} refused the handshake"
        return socket

    async def refused(self, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect(timeout=WAIT)
        await socket.disconnect(timeout=WAIT)
        return not connected

    async def close_all(self) -> None:
        for socket in self.opened:
            await socket.disconnect(timeout=WAIT)


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[Sockets]:
    opened = Sockets()
    yield opened
    await opened.close_all()
    # Consumers and sync_to_async share one worker thread; its database connection would
    # outlive the test and keep the test database from being dropped.
    await sync_to_async(connections.close_all)()


async def receive(socket: WebsocketCommunicator, *, heartbeats: bool = False) -> dict[str, Any]:
    """The next frame (checked against its type in exchange.realtime.messages), skipping
    heartbeats unless asked for."""
    while True:
        frame = await socket.receive_json_from(timeout=WAIT)
        market = socket.scope["path"].startswith("/ws/v1/markets/")
        check(MARKET_FRAME if market else USER_FRAME, frame)
        if heartbeats or frame["type"] != "heartbeat":
            return frame


async def receive_many(socket: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await receive(socket) for _ in range(count)]


async def closed_with(socket: WebsocketCommunicator) -> tuple[dict[str, Any], int, str]:
    """The error frame a refused socket gets, then its close code and reason."""
    error = await receive(socket)
    close = await socket.receive_output(timeout=WAIT)
    assert close["type"] == "websocket.close", close
    return error, close["code"], close.get("reason", "")
