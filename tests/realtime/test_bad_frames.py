"""Garbage on either socket: the documented error frame, never a dropped connection."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests.realtime.support import SYMBOL, closed_with, receive

pytestmark = pytest.mark.django_db(transaction=True)

NESTED = "[" * 20_000 + "]" * 20_000
GARBAGE = [
    '{"op": ["resync"]}',
    '{"op": {}}',
    '{"op": null}',
    '{"op": 1}',
    NESTED,
    '{"op": ' + NESTED + "}",
    "[]",
    '"resync"',
    "\ud800",
]


async def test_garbage_on_the_market_socket_gets_an_error_frame(market, sockets) -> None:
    socket = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    assert (await receive(socket))["type"] == "snapshot"
    for text in GARBAGE:
        await socket.send_to(text_data=text)
        error = await receive(socket)
        assert (error["type"], error["code"]) == ("error", "bad_request"), text[:20]
    await socket.send_to(bytes_data=b'{"op": "ping"}')
    assert (await receive(socket))["code"] == "bad_request"
    # Still usable.
    await socket.send_json_to({"op": "resync"})
    assert (await receive(socket))["reason"] == "requested"


async def test_garbage_on_a_signed_in_user_socket_gets_an_error_frame(trader, sockets) -> None:
    client = await sync_to_async(trader)()
    socket = await sockets.open(
        "/ws/v1/user", headers=[(b"authorization", f"Bearer {client.token}".encode())]
    )
    assert (await receive(socket))["type"] == "authenticated"
    for text in GARBAGE:
        await socket.send_to(text_data=text)
        error = await receive(socket)
        assert (error["type"], error["code"]) == ("error", "bad_request"), text[:20]
    await socket.send_json_to({"op": "ping"})
    assert await receive(socket) == {"type": "pong"}


@pytest.mark.parametrize(
    "text", [NESTED, '{"op": ["auth"], "token": "x"}', '{"op": "auth", "token": {}}']
)
async def test_garbage_before_sign_in_closes_with_the_documented_reason(
    market, sockets, text
) -> None:
    socket = await sockets.open("/ws/v1/user")
    await socket.send_to(text_data=text)
    error, code, reason = await closed_with(socket)
    assert (error["code"], code, reason) == ("not_authenticated", 4401, "not_authenticated")
