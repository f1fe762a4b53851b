"""Building blocks for the withdrawal tests: a vault on anvil, assets, funded traders, the
worker in-process, database code from async tests, and workflow histories."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker
from web3 import Web3

from exchange.chain import Deployment, TokenSpec, Vault, deploy_stack, mint_test_tokens
from exchange.chain.artifacts import contract_at
from tests.async_db import ClosingExecutor
from tests.factories import asset_make

HISTORIES = Path(__file__).parent / "histories"
TOKENS = (TokenSpec("WETH", "Wrapped Ether", 18), TokenSpec("USDC", "USD Coin", 6))
WETH = 10**18
USDC = 10**6


def new_address() -> ChecksumAddress:
    return to_checksum_address("0x" + secrets.token_hex(20))


# ------------------------------------------------------------------------------------ chain
@dataclass
class Chain:
    w3: Web3
    deployment: Deployment
    vault: Vault
    operator: ChecksumAddress
    traders: list[ChecksumAddress]

    def token(self, symbol: str) -> ChecksumAddress:
        return self.deployment.tokens[symbol]

    def deposit(self, trader: str, symbol: str, amount: int) -> str:
        """Mint and deposit into the vault for real; returns the deposit's tx hash."""
        token = self.token(symbol)
        mint_test_tokens(self.w3, token, trader, amount, sender=trader)
        return self.vault.deposit(token, amount, sender=trader).tx_hash

    def token_balance(self, symbol: str, holder: str) -> int:
        return (
            contract_at(self.w3, "TestToken", self.token(symbol)).functions.balanceOf(holder).call()
        )


def deploy_chain(w3: Web3) -> Chain:
    admin, operator, fee, *traders = w3.eth.accounts[:8]
    deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee, tokens=TOKENS)
    return Chain(
        w3=w3,
        deployment=deployment,
        vault=deployment.vault_client(w3, timeout=30),
        operator=operator,
        traders=list(traders),
    )


def configure_chain(settings, rpc_url: str, chain: Chain) -> None:  # type: ignore[no-untyped-def]
    """Point custody's chain clients (which payouts use) at this chain's vault."""
    from exchange.custody.chain import reset_clients

    settings.CHAIN_RPC_URL = rpc_url
    settings.VAULT_ADDRESS = chain.deployment.vault
    settings.VAULT_DEPLOYED_BLOCK = chain.deployment.deployed_block
    settings.SETTLEMENT_OPERATOR_ADDRESS = chain.operator
    reset_clients()


# --------------------------------------------------------------------------------- database
def make_assets(chain: Chain | None = None):  # type: ignore[no-untyped-def]
    """WETH and USDC, with the chain's token addresses (made-up ones without a chain)."""
    made = []
    for spec in TOKENS:
        token = chain.token(spec.symbol) if chain else new_address()
        made.append(asset_make(spec.symbol, token_address=token))
    return tuple(made)


def set_limits(asset, **fields: Any):  # type: ignore[no-untyped-def]
    from exchange.withdrawals.models import AssetWithdrawalLimits

    row, _ = AssetWithdrawalLimits.objects.update_or_create(asset=asset, defaults=fields)
    return row


def credit(account, asset, amount: int) -> None:  # type: ignore[no-untyped-def]
    """Credit the ledger as a confirmed deposit would."""
    from exchange.ledger.services import credit_deposit

    credit_deposit(
        account=account,
        asset=asset,
        amount=amount,
        reference=f"test-deposit:{account.pk}:{asset.pk}:{secrets.token_hex(4)}",
    )


def balance(account, asset) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(available, held) in the ledger."""
    from exchange.ledger.models import Balance

    row = Balance.objects.filter(account=account, asset=asset).first()
    return (row.available, row.held) if row else (0, 0)


def system_withdrawn(asset) -> int:  # type: ignore[no-untyped-def]
    from exchange.accounts.models import SYSTEM_WITHDRAWALS
    from exchange.accounts.services import system_account

    return balance(system_account(SYSTEM_WITHDRAWALS), asset)[0]


def ledger_entries(withdrawal) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """How many journal entries of each kind reference this withdrawal."""
    from exchange.ledger.models import JournalEntry

    kinds: dict[str, int] = {}
    for kind in JournalEntry.objects.filter(reference=f"withdrawal:{withdrawal.pk}").values_list(
        "kind", flat=True
    ):
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# ------------------------------------------------------------------------------------ async


def collect_garbage() -> None:
    """Run finalizers of earlier tests' garbage now, not while the workflow sandbox imports a
    workflow module: redis-py's asyncio connections import a module in __del__, and on Python
    3.11 an import from a finalizer inside a sandboxed import breaks it (a KeyError from
    importlib's module lock, temporalio/sdk-python#1833)."""
    gc.collect()


@asynccontextmanager
async def running_worker(client: Client, queue: str) -> AsyncIterator[Worker]:
    """The withdrawal workflow and its real activities on ``queue``, in this process."""
    from workflows.withdrawals import ACTIVITIES, WORKFLOWS

    collect_garbage()
    executor = ClosingExecutor(max_workers=8, thread_name_prefix="activity")
    try:
        async with Worker(
            client,
            task_queue=queue,
            workflows=list(WORKFLOWS),
            activities=list(ACTIVITIES),
            activity_executor=executor,
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
            graceful_shutdown_timeout=timedelta(seconds=2),
        ) as worker:
            yield worker
    finally:
        executor.shutdown(wait=True)


async def check_histories(client: Client, workflow_ids: list[str], record_as: str = "") -> int:
    """Wait for each workflow to finish (a worker must be running), then replay its history
    with the current code (raises on non-determinism); with CLEARWAY_RECORD_HISTORIES=1, also
    save them under histories/ for test_replay."""
    from workflows.withdrawals import WORKFLOWS

    histories: list[WorkflowHistory] = []
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        await asyncio.wait_for(handle.result(), timeout=60)  # the whole history
        histories.append(await handle.fetch_history())
    collect_garbage()
    replayer = Replayer(workflows=list(WORKFLOWS))
    for history in histories:
        await replayer.replay_workflow(history)
    if record_as and os.environ.get("CLEARWAY_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        for index, history in enumerate(histories):
            suffix = f"-{index}" if len(histories) > 1 else ""
            path = HISTORIES / f"{record_as}{suffix}.json"
            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    return len(histories)
