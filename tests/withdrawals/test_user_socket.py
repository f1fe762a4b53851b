"""A trader's /ws/v1/user socket (the real ASGI application and channels-redis layer) shows its
withdrawals as they change, amounts in base units."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from exchange.accounts.services import token_create
from exchange.asgi import application
from exchange.withdrawals import services

from .support import USDC, credit, new_address, set_limits

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 10  # seconds to wait for a frame that must come (a bound, never an assertion)


async def next_frame(socket: WebsocketCommunicator) -> dict:
    while True:
        frame = await socket.receive_json_from(timeout=WAIT)
        if frame["type"] != "heartbeat":
            return frame


async def test_withdrawal_changes_reach_the_traders_socket(
    channel_layer, trader, usdc, temporal_calls
):
    def setup() -> str:
        credit(trader, usdc, 500 * USDC)
        set_limits(usdc, auto_approve_threshold=100 * USDC)
        return token_create(account=trader).token

    token = await sync_to_async(setup)()
    socket = WebsocketCommunicator(
        application,
        "/ws/v1/user",
        headers=[(b"origin", b"http://localhost"), (b"authorization", f"Bearer {token}".encode())],
    )
    connected, _ = await socket.connect(timeout=WAIT)
    assert connected
    try:
        assert (await next_frame(socket))["type"] == "authenticated"
        destination = new_address()

        def withdraw():  # type: ignore[no-untyped-def]
            request = services.WithdrawalRequest("USDC", 250 * USDC, destination, "ws")
            withdrawal = services.withdrawal_request(account=trader, request=request).withdrawal
            services.withdrawal_cancel(account=trader, withdrawal_id=withdrawal.id)
            services.withdrawal_release(withdrawal_id=withdrawal.id)
            return withdrawal

        withdrawal = await sync_to_async(withdraw)()
        # Withdrawal frames, and the ledger's balance frames for the hold and its release.
        received = [await next_frame(socket) for _ in range(5)]
        frames = [f for f in received if f["type"] == "withdrawal"]
        balances = [f for f in received if f["type"] == "balance"]
    finally:
        await socket.disconnect(timeout=WAIT)
        await sync_to_async(connections.close_all)()

    assert [(b["asset"], b["available"], b["held"]) for b in balances] == [
        ("USDC", 250 * USDC, 250 * USDC),
        ("USDC", 500 * USDC, 0),
    ]
    assert [(f["state"], f["hold_status"]) for f in frames] == [
        ("pending_approval", "held"),
        ("cancelled", "held"),
        ("cancelled", "released"),
    ]
    assert frames[0] == {
        "type": "withdrawal", "id": str(withdrawal.id), "asset": "USDC", "amount": 250 * USDC,
        "destination": destination, "state": "pending_approval", "hold_status": "held",
        "tx_hash": None, "confirmations": 0, "updated_at": frames[0]["updated_at"],
    }  # fmt: skip
