"""Withdrawals end to end: the REST API, the admin, the workflow on the real Temporal dev server
with its real activities in an in-process worker, PostgreSQL, and payouts on a real vault on
anvil. Recorded histories (CLEARWAY_RECORD_HISTORIES=1) come from these runs."""

from __future__ import annotations

import asyncio
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client as DjangoClient

from exchange.accounts.services import token_create, trader_get_or_create
from exchange.withdrawals.models import Withdrawal
from tests.async_db import orm
from tests.waiting import eventually, eventually_async

from .support import (
    USDC,
    balance,
    check_histories,
    credit,
    ledger_entries,
    new_address,
    running_worker,
    set_limits,
    system_withdrawn,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Trader:
    """A trader with USDC in the vault (deposited on chain) and in the ledger, and an API
    client signed in as it."""

    def __init__(self, live, index: int = 0, usdc: int = 100 * USDC) -> None:  # type: ignore[no-untyped-def]
        self.live = live
        self.address = live.chain.traders[index]
        self.account = trader_get_or_create(address=self.address)
        live.chain.deposit(self.address, "USDC", usdc)
        credit(self.account, live.usdc, usdc)
        self.http = DjangoClient(
            HTTP_AUTHORIZATION=f"Bearer {token_create(account=self.account).token}"
        )

    def withdraw(self, amount: str, destination: str, key: str = "w1") -> Any:
        body = {"asset": "USDC", "amount": amount, "destination": destination,
                "idempotency_key": key}  # fmt: skip
        return self.http.post("/api/v1/withdrawals", body, content_type="application/json")

    def get(self, withdrawal_id: str) -> dict:
        response = self.http.get(f"/api/v1/withdrawals/{withdrawal_id}")
        assert response.status_code == 200, response.content
        return response.json()


def state_of(withdrawal_id: str, *states: str):  # type: ignore[no-untyped-def]
    def check() -> Withdrawal | None:
        row = Withdrawal.objects.get(pk=withdrawal_id)
        return row if row.state in states else None

    return check


def released(withdrawal_id: str) -> bool:
    return Withdrawal.objects.get(pk=withdrawal_id).hold_status == "released"


async def collect(layer, channel: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """The withdrawal events that reached ``channel`` so far."""
    events: list[dict] = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
        except TimeoutError:
            return events
        assert message["type"] == "user.events"
        # The account's balance events (the ledger's, one per posting) share the group.
        events += [e for e in message["events"] if e["type"] == "withdrawal"]


async def test_a_withdrawal_under_the_threshold_is_paid_automatically(live, channel_layer):
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)
    channel = await channel_layer.new_channel()
    await channel_layer.group_add(f"account.{trader.account.pk}", channel)
    destination = new_address()

    async with running_worker(live.client, live.queue):
        response = await orm(trader.withdraw, "30.5", destination)
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["state"], body["amount"], body["approval_reasons"]) == ("approved", "30.5", [])
        done = await eventually(state_of(body["id"], "confirmed"), what="payout confirmed")

        amount = 30_500_000
        assert live.chain.token_balance("USDC", destination) == amount
        assert (
            live.chain.vault.balance_of(trader.address, live.chain.token("USDC"))
            == 100 * USDC - amount
        )
        assert await orm(balance, trader.account, live.usdc) == (100 * USDC - amount, 0)
        assert await orm(system_withdrawn, live.usdc) == amount
        assert await orm(ledger_entries, done) == {"hold": 1, "withdrawal": 1}
        await orm(call_command, "ledger_check", stdout=StringIO())
        shown = await orm(trader.get, body["id"])
        assert shown["state"] == "confirmed" and shown["hold_status"] == "consumed"
        assert shown["tx_hash"] == done.tx_hash and shown["tx_hash"].startswith("0x")
        assert shown["confirmations"] >= 1 and shown["block_number"] == done.block_number

        events = await collect(channel_layer, channel)
        assert [e["state"] for e in events] == ["approved", "paying", "submitted", "confirmed"]
        assert events[-1] == {
            "type": "withdrawal", "id": body["id"], "asset": "USDC", "amount": amount,
            "destination": destination, "state": "confirmed", "hold_status": "consumed",
            "tx_hash": done.tx_hash, "confirmations": done.confirmations,
            "updated_at": events[-1]["updated_at"],
        }  # fmt: skip

        handle = live.client.get_workflow_handle(body["id"])
        result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result["state"] == "confirmed" and result["tx_hash"] == done.tx_hash
        attributes = (await handle.describe()).search_attributes
        assert attributes["AccountAddress"] == [trader.address]
        assert attributes["Asset"] == ["USDC"]
        assert attributes["Amount"] == [amount]  # millionths of a token: USDC's base units
        assert attributes["WithdrawalState"] == ["confirmed"]
        assert await check_histories(live.client, [body["id"]], record_as="auto-paid") == 1


async def test_above_the_threshold_it_waits_then_an_admin_approval_pays(live, admin_client):
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)
    destination = new_address()

    async with running_worker(live.client, live.queue):
        body = (await orm(trader.withdraw, "80", destination)).json()
        assert (body["state"], body["approval_reasons"]) == (
            "pending_approval",
            ["above_threshold"],
        )
        # Operators find it in the Temporal UI by its search attributes.
        query = (
            f"WithdrawalState = 'pending_approval' AND AccountAddress = '{trader.address}' "
            f"AND Asset = 'USDC' AND Amount > 50000000"
        )

        async def listed() -> bool:
            return [w.id async for w in live.client.list_workflows(query)] == [body["id"]]

        await eventually_async(listed, what="the workflow listed by its search attributes")
        queue = await orm(admin_client.get, "/admin/withdrawals/withdrawal/?queue=awaiting")
        assert body["id"] in queue.content.decode()
        assert await orm(state_of(body["id"], "pending_approval"))  # waits, paying nothing

        response = await orm(
            admin_client.post,
            "/admin/withdrawals/withdrawal/",
            {"action": "approve", "_selected_action": [body["id"]]},
        )
        assert response.status_code == 302
        done = await eventually(state_of(body["id"], "confirmed"), what="approved payout")

        assert done.decided_by == "admin:admin"
        assert live.chain.token_balance("USDC", destination) == 80 * USDC
        assert await orm(balance, trader.account, live.usdc) == (20 * USDC, 0)
        assert await orm(ledger_entries, done) == {"hold": 1, "withdrawal": 1}
        assert await check_histories(live.client, [body["id"]], record_as="approved-paid") == 1


async def test_an_admin_rejection_releases_the_hold_and_pays_nothing(live, admin_client):
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)
    destination = new_address()

    async with running_worker(live.client, live.queue):
        body = (await orm(trader.withdraw, "80", destination)).json()
        await orm(
            admin_client.post,
            "/admin/withdrawals/withdrawal/",
            {"action": "reject", "_selected_action": [body["id"]]},
        )
        await eventually(lambda: released(body["id"]), what="hold released")

        shown = await orm(trader.get, body["id"])
        assert (shown["state"], shown["hold_status"], shown["tx_hash"]) == (
            "rejected",
            "released",
            None,
        )
        assert await orm(balance, trader.account, live.usdc) == (100 * USDC, 0)
        assert live.chain.token_balance("USDC", destination) == 0
        assert live.chain.vault.balance_of(trader.address, live.chain.token("USDC")) == 100 * USDC
        assert await check_histories(live.client, [body["id"]], record_as="rejected") == 1


async def test_the_trader_cancels_while_it_awaits_approval(live):
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)

    async with running_worker(live.client, live.queue):
        body = (await orm(trader.withdraw, "80", new_address())).json()
        response = await orm(trader.http.delete, f"/api/v1/withdrawals/{body['id']}")
        assert response.status_code == 200 and response.json()["state"] == "cancelled"
        await eventually(lambda: released(body["id"]), what="hold released")
        again = await orm(trader.http.delete, f"/api/v1/withdrawals/{body['id']}")

        assert again.status_code == 409 and again.json()["code"] == "withdrawal_not_cancellable"
        assert await orm(balance, trader.account, live.usdc) == (100 * USDC, 0)
        assert await check_histories(live.client, [body["id"]], record_as="cancelled") == 1


async def test_without_a_decision_the_timer_expires_it(live, settings):
    settings.WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS = 2
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)

    async with running_worker(live.client, live.queue):
        body = (await orm(trader.withdraw, "80", new_address())).json()
        await eventually(lambda: released(body["id"]), what="expired and released")

        row = await orm(Withdrawal.objects.get, pk=body["id"])
        assert (row.state, row.decided_by) == ("expired", "timer")
        assert await orm(balance, trader.account, live.usdc) == (100 * USDC, 0)
        assert await check_histories(live.client, [body["id"]], record_as="expired") == 1


async def test_the_payout_waits_for_the_confirmation_depth(live, settings):
    settings.CONFIRMATION_DEPTH = 3
    trader = await orm(Trader, live)
    await orm(set_limits, live.usdc, auto_approve_threshold=50 * USDC)

    async with running_worker(live.client, live.queue):
        body = (await orm(trader.withdraw, "10", new_address())).json()
        submitted = await eventually(state_of(body["id"], "submitted"), what="payout sent")
        assert submitted.hold_status == "held"
        for _ in range(2):
            live.chain.w3.provider.make_request("evm_mine", [])
        done = await eventually(state_of(body["id"], "confirmed"), what="3 confirmations")

        assert done.confirmations >= 3
        assert await orm(ledger_entries, done) == {"hold": 1, "withdrawal": 1}
        assert await check_histories(live.client, [body["id"]], record_as="deep-confirmation") == 1
