"""/ws/v1/user: authentication in its three forms, refusals with reasons, settlement events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from exchange.accounts.models import AuthToken
from exchange.realtime import consumers
from exchange.realtime.events import publish_settlement_status
from exchange.trading.models import Trade
from tests.realtime.support import SYMBOL, closed_with, receive
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
WETH = 10**18


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def test_query_parameter_token_and_ops_after_sign_in(trader, sockets) -> None:
    client = await sync_to_async(trader)()
    socket = await sockets.open(f"/ws/v1/user?token={client.token}")
    hello = await receive(socket)
    assert (hello["type"], hello["address"]) == ("authenticated", client.address)
    await socket.send_json_to({"op": "ping"})
    assert await receive(socket) == {"type": "pong"}
    await socket.send_json_to({"op": "auth", "token": client.token})
    assert (await receive(socket))["code"] == "already_authenticated"


async def test_a_bad_header_token_is_closed_with_the_reason(market, sockets) -> None:
    socket = await sockets.open("/ws/v1/user", headers=bearer("cw_not-a-real-token"))
    error, code, reason = await closed_with(socket)
    assert (code, reason, error["code"]) == (4401, "token_invalid", "token_invalid")


async def test_a_revoked_token_is_closed_with_the_reason(trader, sockets) -> None:
    client = await sync_to_async(trader)()
    token = client.token
    await sync_to_async(client.logout)()
    socket = await sockets.open(f"/ws/v1/user?token={token}")
    _, code, reason = await closed_with(socket)
    assert (code, reason) == (4401, "token_revoked")


async def test_an_expired_token_in_the_first_frame_is_closed(trader, sockets) -> None:
    client = await sync_to_async(trader)()
    await sync_to_async(
        lambda: AuthToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    )()
    socket = await sockets.open("/ws/v1/user")
    await socket.send_json_to({"op": "auth", "token": client.token})
    _, code, reason = await closed_with(socket)
    assert (code, reason) == (4401, "token_expired")


async def test_a_first_frame_that_is_not_auth_is_closed(market, sockets) -> None:
    socket = await sockets.open("/ws/v1/user")
    await socket.send_json_to({"op": "ping"})
    error, code, reason = await closed_with(socket)
    assert (code, reason) == (4401, "not_authenticated")
    assert "auth" in error["message"]


async def test_no_authentication_in_time_is_closed(market, sockets, settings) -> None:
    settings.REALTIME_AUTH_TIMEOUT_SECONDS = 0.05
    socket = await sockets.open("/ws/v1/user")
    _, code, reason = await closed_with(socket)
    assert (code, reason) == (4401, "auth_timeout")


async def test_a_token_that_expires_on_an_open_socket_closes_it(
    trader, sockets, settings, monkeypatch
) -> None:
    settings.REALTIME_HEARTBEAT_SECONDS = 0.05
    client = await sync_to_async(trader)()
    socket = await sockets.open("/ws/v1/user", headers=bearer(client.token))
    hello = await receive(socket)
    assert hello["type"] == "authenticated"

    class Later:
        @staticmethod
        def now():  # type: ignore[no-untyped-def]
            return timezone.now() + timedelta(days=2)

    monkeypatch.setattr(consumers, "timezone", Later)
    _, code, reason = await closed_with(socket)
    assert (code, reason) == (4401, "token_expired")


async def test_settlement_status_reaches_both_sides_of_a_trade(trader, worker, sockets) -> None:
    seller = await sync_to_async(trader)(weth=WETH)
    buyer = await sync_to_async(trader)(usdc=3_000 * USDC)
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(buyer.place_order)(SYMBOL, "buy", quantity="0.5", price="2000")
    await sync_to_async(drain)(worker)
    seller_ws = await sockets.open("/ws/v1/user", headers=bearer(seller.token))
    buyer_ws = await sockets.open("/ws/v1/user", headers=bearer(buyer.token))
    assert (
        (await receive(seller_ws))["type"] == (await receive(buyer_ws))["type"] == "authenticated"
    )

    def settle() -> str:
        trade = Trade.objects.select_related("market").get()
        trade.settlement_status = Trade.SettlementStatus.BATCHED
        trade.save(update_fields=["settlement_status"])
        publish_settlement_status([trade], batch_id=7)
        return trade.trade_id

    trade_id = await sync_to_async(settle)()
    expected = {"type": "settlement", "trade_id": trade_id, "market": SYMBOL,
                "status": "batched", "batch_id": 7}  # fmt: skip
    assert await receive(seller_ws) == expected
    assert await receive(buyer_ws) == expected
