"""SIGKILL the Temporal worker process while a withdrawal waits for approval and while its
payout transaction is pending: a new worker finishes it, paid exactly once (the vault pays a
withdrawal id at most once; the second attempt finds the first one's payout) and booked once."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from temporalio.service import RPCError

from exchange.chain import withdrawal_key
from exchange.withdrawals import services
from exchange.withdrawals.models import Withdrawal
from tests.async_db import orm
from tests.support import WorkerProcess, database_url
from tests.waiting import eventually, eventually_async

from .support import (
    USDC,
    balance,
    check_histories,
    credit,
    ledger_entries,
    new_address,
    set_limits,
    system_withdrawn,
)

pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(live) -> dict[str, str]:  # type: ignore[no-untyped-def]
    extra = {
        "VAULT_DEPLOYED_BLOCK": live.chain.deployment.deployed_block,
        "SETTLEMENT_OPERATOR_ADDRESS": live.chain.operator,
        "CONFIRMATION_DEPTH": 1,
        "WITHDRAWAL_POLL_SECONDS": 0.1,
        "WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS": 2,
    }
    return {
        "DATABASE_URL": database_url(),
        "TEMPORAL_ADDRESS": live.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": live.client.namespace,
        "TEMPORAL_TASK_QUEUE": live.queue,
        "CHAIN_RPC_URL": live.rpc_url,
        "VAULT_ADDRESS": live.chain.deployment.vault,
        "CLEARWAY_TEST_SETTINGS": json.dumps(extra),
    }


def funded_trader(live):  # type: ignore[no-untyped-def]
    from exchange.accounts.services import trader_get_or_create

    address = live.chain.traders[0]
    account = trader_get_or_create(address=address)
    live.chain.deposit(address, "USDC", 100 * USDC)
    credit(account, live.usdc, 100 * USDC)
    set_limits(live.usdc, auto_approve_threshold=50 * USDC)
    return account


def request(account, amount: int, destination: str) -> Withdrawal:  # type: ignore[no-untyped-def]
    return services.withdrawal_request(
        account=account,
        request=services.WithdrawalRequest("USDC", amount, destination, "crash"),
    ).withdrawal


def paid_events(live, withdrawal_id: str) -> int:  # type: ignore[no-untyped-def]
    return len(
        live.chain.vault.contract.events.WithdrawalPaid.get_logs(
            from_block=live.chain.vault.from_block,
            argument_filters={"withdrawalId": withdrawal_key(withdrawal_id)},
        )
    )


def operator_txs_pending(live) -> int:  # type: ignore[no-untyped-def]
    pending = live.chain.w3.provider.make_request("txpool_content", [])["result"]["pending"]
    for sender, txs in pending.items():
        if sender.lower() == live.chain.operator.lower():
            return len(txs)
    return 0


async def assert_paid_exactly_once(
    live, account, withdrawal_id: str, destination: str, amount: int
):  # type: ignore[no-untyped-def]
    done = await eventually(
        lambda: Withdrawal.objects.filter(pk=withdrawal_id, state="confirmed").first(),
        what="withdrawal confirmed",
    )
    assert live.chain.token_balance("USDC", destination) == amount
    assert paid_events(live, withdrawal_id) == 1
    assert live.chain.vault.balance_of(account.address, live.chain.token("USDC")) == (
        100 * USDC - amount
    )
    assert await orm(ledger_entries, done) == {"hold": 1, "withdrawal": 1}
    assert await orm(balance, account, live.usdc) == (100 * USDC - amount, 0)
    assert await orm(system_withdrawn, live.usdc) == amount
    await orm(call_command, "ledger_check", stdout=StringIO())  # conservation, no negatives
    return done


async def test_killing_the_worker_while_a_withdrawal_waits_for_approval(private_live, names):
    live = private_live
    account = await orm(funded_trader, live)
    destination = new_address()
    worker = WorkerProcess(
        f"withdrawal-crash-{names[1]}", "tests.withdrawals.worker_proc", env=worker_env(live)
    )
    try:
        worker.start()
        withdrawal = await orm(request, account, 80 * USDC, destination)
        handle = live.client.get_workflow_handle(str(withdrawal.id))

        # The worker holds the workflow, waiting on its approval timer.
        async def awaiting_approval() -> bool:
            try:
                return await handle.query("state") == "pending_approval"
            except RPCError:  # not started on the worker yet
                return False

        await eventually_async(awaiting_approval, timeout=30, what="the workflow awaits approval")
        worker.kill()

        # The admin approves while no worker runs: recorded, and signalled to Temporal.
        decided = await orm(
            services.withdrawal_approve, withdrawal_id=withdrawal.id, actor="admin:ann"
        )
        assert decided.signalled == [True]
        worker.start()
        await assert_paid_exactly_once(live, account, str(withdrawal.id), destination, 80 * USDC)
        assert await check_histories(live.client, [str(withdrawal.id)], "crash-mid-wait") == 1
    finally:
        worker.stop()


async def test_killing_the_worker_while_its_payout_is_pending(private_live, names):
    live = private_live
    account = await orm(funded_trader, live)
    destination = new_address()
    w3 = live.chain.w3
    worker = WorkerProcess(
        f"withdrawal-crash-{names[1]}", "tests.withdrawals.worker_proc", env=worker_env(live)
    )
    try:
        # Blocks only when asked: the payout stays in the mempool while the worker waits.
        w3.provider.make_request("evm_setAutomine", [False])
        worker.start()
        withdrawal = await orm(request, account, 30 * USDC, destination)
        await eventually(lambda: operator_txs_pending(live) == 1, what="payout sent")
        row = await orm(Withdrawal.objects.get, pk=withdrawal.pk)
        assert (row.state, row.payout_attempts) == ("paying", 1)
        worker.kill()

        # A new worker retries the payout (after the heartbeat timeout) while the first one's
        # transaction is still pending: two payouts of one withdrawal id in flight at once.
        # Both are mined in one block; the vault lets one through.
        worker.start()
        await eventually(lambda: operator_txs_pending(live) == 2, what="second payout sent")
        w3.provider.make_request("evm_setAutomine", [True])
        w3.provider.make_request("evm_mine", [])

        done = await assert_paid_exactly_once(
            live, account, str(withdrawal.id), destination, 30 * USDC
        )
        assert done.payout_attempts >= 2
        assert await check_histories(live.client, [str(withdrawal.id)], "crash-mid-pay") == 1
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
        worker.stop()
