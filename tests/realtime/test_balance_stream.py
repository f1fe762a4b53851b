"""/ws/v1/user gets every change of the account's balances, after commit, and the last frame of
each asset is what REST says (exchange.ledger.services announces every posting)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction

from exchange.accounts.models import Account
from exchange.custody.deposits import deposit_credit
from exchange.custody.models import Deposit
from exchange.ledger.models import JournalEntry
from exchange.ledger.services import Line, hold, pay_withdrawal, post_entry, release
from exchange.markets.models import Asset
from exchange.realtime.messages import account_group, balance_event, user_events
from tests.realtime.support import SYMBOL, WAIT, receive
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
WETH = 10**18
DECIMALS = {"USDC": 6, "WETH": 18}


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


def rest_balances(client) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """GET /api/v1/balances in base units."""
    rows = client.request("GET", "balances")
    rows = rows["results"] if isinstance(rows, dict) else rows
    scale = {symbol: 10**d for symbol, d in DECIMALS.items()}
    return {
        r["asset"]: {
            "available": int(Decimal(r["available"]) * scale[r["asset"]]),
            "held": int(Decimal(r["held"]) * scale[r["asset"]]),
        }
        for r in rows
    }


def credit(address: str, symbol: str, amount: int, log_index: int) -> None:
    """A deposit the chain watcher saw, credited the way it credits one."""
    account = Account.objects.get(address=address)
    deposit = Deposit.objects.create(
        vault="0x" + "5a" * 20, tx_hash="0x" + "22" * 32, log_index=log_index, block_number=1,
        block_hash="0x" + "33" * 32, depositor=address, token="0x" + "44" * 20, account=account,
        asset=Asset.objects.get(symbol=symbol), amount=amount,
    )  # fmt: skip
    deposit_credit(deposit_pk=deposit.pk, confirmations=3)


def withdraw_paid_and_refunded(address: str) -> None:
    """A withdrawal's hold, its payout, and a second one's hold and refund (the ledger calls of
    exchange.withdrawals.services), plus an operator's adjustment."""
    account = Account.objects.get(address=address)
    usdc = Asset.objects.get(symbol="USDC")
    hold(account=account, asset=usdc, amount=10 * USDC, reference="withdrawal:a")
    pay_withdrawal(account=account, asset=usdc, amount=10 * USDC, reference="withdrawal:a")
    hold(account=account, asset=usdc, amount=5 * USDC, reference="withdrawal:b")
    release(account=account, asset=usdc, amount=5 * USDC, reference="withdrawal:b")
    fees = Account.objects.get(address="system:fees")
    post_entry(
        kind=JournalEntry.Kind.ADJUSTMENT,
        reference="reorg:1",
        lines=[Line(fees.pk, usdc.pk, 1), Line(account.pk, usdc.pk, -1)],
    )


async def test_every_balance_change_reaches_the_socket_and_the_last_equals_rest(
    trader, worker, sockets
) -> None:
    alice = await sync_to_async(trader)()
    socket = await sockets.open("/ws/v1/user", headers=bearer(alice.token))
    assert (await receive(socket))["type"] == "authenticated"

    async def balance() -> dict:
        while (frame := await receive(socket))["type"] != "balance":
            pass
        return frame

    # A deposit credited from the chain.
    await sync_to_async(credit)(alice.address, "USDC", 1_000 * USDC, 0)
    assert await balance() == {"type": "balance", "asset": "USDC", "available": 1_000 * USDC,
                               "held": 0, "version": 1}  # fmt: skip
    # A resting order's hold (the API), then its release when cancelled (the worker).
    order = await sync_to_async(alice.place_order)(SYMBOL, "buy", quantity="0.1", price="1000")
    held = await balance()
    assert (held["available"], held["held"], held["version"]) == (
        1_000 * USDC - held["held"], held["held"], 2,
    )  # fmt: skip
    assert held["held"] >= 100 * USDC
    await sync_to_async(drain)(worker)
    await sync_to_async(alice.cancel_order)(order["id"])
    await sync_to_async(drain)(worker)
    released = await balance()
    assert (released["available"], released["held"], released["version"]) == (1_000 * USDC, 0, 3)
    # Withdrawals (hold, payout; hold, refund) and an adjustment: one frame each, in order.
    await sync_to_async(withdraw_paid_and_refunded)(alice.address)
    frames = [await balance() for _ in range(5)]
    assert [(f["available"], f["held"], f["version"]) for f in frames] == [
        (990 * USDC, 10 * USDC, 4),
        (990 * USDC, 0, 5),
        (985 * USDC, 5 * USDC, 6),
        (990 * USDC, 0, 7),
        (990 * USDC - 1, 0, 8),
    ]
    assert {"USDC": {k: frames[-1][k] for k in ("available", "held")}} == await sync_to_async(
        rest_balances
    )(alice)


async def test_fills_and_fees_reach_both_traders_and_the_last_frames_equal_rest(
    trader, worker, sockets
) -> None:
    seller = await sync_to_async(trader)(weth=WETH)
    buyer = await sync_to_async(trader)(usdc=5_000 * USDC)
    seller_ws = await sockets.open("/ws/v1/user", headers=bearer(seller.token))
    buyer_ws = await sockets.open("/ws/v1/user", headers=bearer(buyer.token))
    for socket in (seller_ws, buyer_ws):
        assert (await receive(socket))["type"] == "authenticated"
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(buyer.place_order)(SYMBOL, "buy", quantity="0.3", price="2001")
    await sync_to_async(drain)(worker)

    for client, socket in ((seller, seller_ws), (buyer, buyer_ws)):
        # The hold, then the trade's two balances (fee and release included): three frames.
        frames = []
        while len(frames) < 3:
            if (frame := await receive(socket))["type"] == "balance":
                frames.append(frame)
        last = {f["asset"]: f for f in frames}
        assert len(last) == 2
        rest = await sync_to_async(rest_balances)(client)
        assert {a: {"available": f["available"], "held": f["held"]} for a, f in last.items()} == {
            a: rest[a] for a in last
        }


async def test_nothing_is_announced_for_a_rolled_back_posting(trader, sockets) -> None:
    alice = await sync_to_async(trader)(usdc=100 * USDC)
    socket = await sockets.open("/ws/v1/user", headers=bearer(alice.token))
    assert (await receive(socket))["type"] == "authenticated"

    def rolled_back_then_committed() -> None:
        account = Account.objects.get(address=alice.address)
        usdc = Asset.objects.get(symbol="USDC")
        with pytest.raises(RuntimeError), transaction.atomic():
            hold(account=account, asset=usdc, amount=7 * USDC, reference="never")
            raise RuntimeError("rolled back")
        hold(account=account, asset=usdc, amount=3 * USDC, reference="kept")

    await sync_to_async(rolled_back_then_committed)()
    frame = await receive(socket)
    assert (frame["held"], frame["version"]) == (3 * USDC, 2)


async def test_an_older_balance_arriving_late_is_not_sent(trader, sockets, channel_layer) -> None:
    alice = await sync_to_async(trader)()
    socket = await sockets.open("/ws/v1/user", headers=bearer(alice.token))
    hello = await receive(socket)
    group = account_group(hello["account_id"])
    newer, older = balance_event("USDC", 5, 0, 9), balance_event("USDC", 7, 0, 8)
    await channel_layer.group_send(group, user_events([newer]))
    await channel_layer.group_send(group, user_events([older]))
    await channel_layer.group_send(group, user_events([balance_event("WETH", 1, 0, 1)]))
    assert await receive(socket) == newer
    assert (await receive(socket))["asset"] == "WETH"


async def test_concurrent_postings_end_on_the_frame_rest_shows(trader, sockets) -> None:
    """Four threads (like the API, the worker and workflows) change one balance at once: the
    frames the socket gets only go forward, and the last is the committed balance."""
    alice = await sync_to_async(trader)(usdc=100 * USDC)
    socket = await sockets.open("/ws/v1/user", headers=bearer(alice.token))
    assert (await receive(socket))["type"] == "authenticated"

    def hold_some(thread: int) -> None:
        try:
            account = Account.objects.get(address=alice.address)
            usdc = Asset.objects.get(symbol="USDC")
            for n in range(5):
                hold(account=account, asset=usdc, amount=USDC, reference=f"t{thread}:{n}")
        finally:
            connections.close_all()

    def run_threads() -> None:
        threads = [threading.Thread(target=hold_some, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=WAIT)
        assert not any(thread.is_alive() for thread in threads)

    await sync_to_async(run_threads, thread_sensitive=False)()
    versions, frame = [], None
    while not versions or versions[-1] < 21:  # funding, then 20 holds
        frame = await receive(socket)
        versions.append(frame["version"])
    assert versions == sorted(set(versions))
    assert (frame["available"], frame["held"]) == (80 * USDC, 20 * USDC)
    rest = await sync_to_async(rest_balances)(alice)
    assert rest["USDC"] == {"available": frame["available"], "held": frame["held"]}
