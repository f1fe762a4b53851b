"""SIGKILL the Temporal worker process (`workers.temporal`) at six different points of
settlement and deposit crediting, on a chain with 1-second blocks; every batch still ends up
settled exactly once, every deposit credited once, and the vault equal to the ledger."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from web3 import Web3

from exchange.accounts.services import trader_get_or_create
from exchange.chain.artifacts import contract_at
from exchange.custody.models import Deposit, SettlementBatch
from exchange.ledger.models import JournalEntry
from exchange.trading.models import Trade
from tests.async_db import orm
from tests.custody.support import Chain, configure, deploy_chain
from tests.factories import USDC
from tests.support import Anvil, WorkerProcess, database_url, start_anvil
from tests.waiting import eventually
from tests.workflows.support import (
    all_confirmed,
    balances_match,
    book_fills,
    check_histories,
    credited,
    fund,
    settled_exactly_once,
    stop_singletons,
)
from workflows.settlement import types

pytestmark = pytest.mark.django_db(transaction=True)

DEPTH = 2  # so a settled batch waits a block for its depth: a window to kill in


@pytest.fixture
def mining_anvil() -> Iterator[Anvil]:
    chain = start_anvil()
    yield chain
    chain.proc.stop()


@pytest.fixture
def crash_setup(transactional_db, settings, mining_anvil, names):  # type: ignore[no-untyped-def]
    from tests.custody.support import make_market

    w3 = Web3(Web3.HTTPProvider(mining_anvil.rpc_url, request_kwargs={"timeout": 10}))
    chain = deploy_chain(w3)  # automining: quick to deploy and fund
    configure(settings, mining_anvil.rpc_url, chain)
    setup = make_market(chain)
    amounts = fund(chain)
    # From here on, production-like 1-second blocks.
    w3.provider.make_request("evm_setIntervalMining", [1])
    return chain, setup, amounts


def worker_env(temporal_env, chain: Chain, rpc_url: str, queue: str, prefix: str) -> dict:  # type: ignore[no-untyped-def]
    extra = {
        "VAULT_DEPLOYED_BLOCK": chain.deployment.deployed_block,
        "SETTLEMENT_OPERATOR_ADDRESS": chain.operator,
        "CONFIRMATION_DEPTH": DEPTH,
        "SETTLEMENT_BATCH_MAX_TRADES": 3,
        "SETTLEMENT_BATCH_MAX_SECONDS": 0.3,
        "SETTLEMENT_CUT_WAIT_SECONDS": 1,
        "CHAIN_POLL_SECONDS": 0.3,
        "TEMPORAL_WORKFLOW_ID_PREFIX": prefix,
        "TEMPORAL_STICKY_TIMEOUT_SECONDS": 1,
        "TEMPORAL_METRICS_PORT": 0,
    }
    return {
        "DATABASE_URL": database_url(),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal_env.client.namespace,
        "TEMPORAL_TASK_QUEUE": queue,
        "CHAIN_RPC_URL": rpc_url,
        "VAULT_ADDRESS": chain.deployment.vault,
        "CLEARWAY_TEST_SETTINGS": json.dumps(extra),
    }


def deposit_without_waiting(chain: Chain, trader: str, token: str, amount: int) -> None:
    """Mint, approve and deposit in one block (sent back to back, in nonce order)."""
    erc20 = contract_at(chain.w3, "TestToken", token)
    sent = {"from": trader, "gas": 300_000}  # no estimate: it would not see the earlier ones
    erc20.functions.mint(trader, amount).transact(sent)
    erc20.functions.approve(chain.vault.address, amount).transact(sent)
    chain.vault.contract.functions.deposit(token, amount).transact(sent)


def mining(chain: Chain, on: bool) -> None:
    """1-second blocks, or a chain that stands still until mine()."""
    chain.w3.provider.make_request("evm_setIntervalMining", [1 if on else 0])


def mine(chain: Chain) -> None:
    chain.w3.provider.make_request("evm_mine", [])


def settlement_pending(chain: Chain) -> bool:
    pending = chain.w3.provider.make_request("txpool_content", [])["result"]["pending"]
    return chain.operator.lower() in pending


async def test_killing_the_worker_at_any_point_still_settles_every_batch_exactly_once(
    temporal_env, crash_setup, names, mining_anvil
):
    chain, setup, amounts = crash_setup
    queue, prefix = names
    client = temporal_env.client
    worker = WorkerProcess(
        f"crash-{prefix}",
        "tests.workflows.worker_proc",
        env=worker_env(temporal_env, chain, mining_anvil.rpc_url, queue, prefix),
    )
    kills: list[str] = []

    async def kill_when(what: str, check, *, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
        await eventually(check, timeout=timeout, every=0.02, what=what)
        worker.kill()
        kills.append(what)
        worker.start()

    def batch_in(status: str) -> bool:
        return SettlementBatch.objects.filter(status=status).exists()

    try:
        worker.start()
        # 1. While it starts up (connecting, starting the scheduler and the watcher).
        await asyncio.sleep(0.5)
        await kill_when("starting up", lambda: True)

        # 2. A deposit is seen but not yet deep enough to credit. (The chain stands still
        #    meanwhile, so the watcher cannot see it deep enough before the kill.)
        late = (chain.traders[3], chain.usdc, 4_321 * USDC)
        mining(chain, False)
        await asyncio.to_thread(deposit_without_waiting, chain, *late)
        mine(chain)
        await kill_when("deposit seen, not credited", lambda: Deposit.objects.filter(
            depositor=late[0], status="seen").exists())  # fmt: skip
        mining(chain, True)
        amounts[late[0]] = (0, late[2])
        await eventually(lambda: credited(setup, amounts), what="deposits credited")

        # 3. A batch is cut (trades batched) and not on chain yet.
        await orm(book_fills, chain, setup, 4)
        await kill_when("batch cut, not on chain", lambda: batch_in("built"))

        # 4. The settlement transaction is in the mempool (the chain stands still): the submit
        #    activity is waiting for its receipt. It is mined while no worker runs.
        await eventually(all_confirmed, what="the first round confirmed")
        mining(chain, False)
        await orm(book_fills, chain, setup, 4, 4)
        await eventually(lambda: settlement_pending(chain), every=0.02, what="settlement sent")
        worker.kill()
        kills.append("settlement tx pending")
        mine(chain)
        mining(chain, True)
        worker.start()

        # 5. A batch is on chain, short of the confirmation depth.
        await orm(book_fills, chain, setup, 3, 8)
        await kill_when("batch on chain, not deep enough", lambda: batch_in("submitted"))

        # 6. Just after a batch was marked confirmed.
        confirmed_before = await orm(SettlementBatch.objects.filter(status="confirmed").count)
        await orm(book_fills, chain, setup, 3, 11)
        await kill_when(
            "batch just confirmed",
            lambda: SettlementBatch.objects.filter(status="confirmed").count() > confirmed_before,
        )

        await eventually(all_confirmed, timeout=120, what="every trade confirmed")
    finally:
        worker.stop()
        await stop_singletons(client, prefix)

    assert len(kills) == 6
    batches = await orm(settled_exactly_once, chain)
    assert await orm(Trade.objects.count) == 14
    assert len(batches) >= 5
    deposits = await orm(lambda: list(Deposit.objects.values_list("status", flat=True)))
    assert deposits == ["credited"] * 5  # four funding deposits and the late one
    assert await orm(JournalEntry.objects.filter(kind="deposit").count) == 5
    assert (
        await orm(
            lambda: trader_get_or_create(address=late[0]).balances.get(asset=setup.usdc).available
        )
        == late[2]
    )
    await orm(balances_match, chain, setup)

    ids = [prefix + "settlement-scheduler", prefix + "chain-watcher"]
    ids += [types.batch_workflow_id(b.batch_id, prefix) for b in batches]
    assert await check_histories(client, ids, record_as="crash") == len(ids)
