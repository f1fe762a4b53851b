"""Reorgs injected with ``anvil_reorg`` at depths 1 to CONFIRMATION_DEPTH + 2, at seeded random
moments (0 to depth blocks, plus a random fraction of a second, after the move) during deposits,
settlement batches and withdrawal payouts, with the real worker wiring (workers.temporal:
scheduler, batch workflows, chain watcher, withdrawal workflows) on the Temporal dev server,
PostgreSQL and a private anvil chain that mines a block every half second on top of automining.
Half the dropped deposits are rebroadcast by their "wallet", as the same raw transactions.

Afterwards the database agrees with the chain: every batch is confirmed and on chain exactly once,
every confirmed payout is paid exactly once, the vault equals the ledger for every account except
the depositors whose credited deposits a deep reorg removed (those are frozen, their credit kept,
and differ by exactly those deposits), no deposit is credited twice, and ledger_check passes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import TransactionNotFound

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.chain import withdrawal_key
from exchange.chain.artifacts import contract_at
from exchange.custody.chain import reset_clients
from exchange.custody.models import ChainCursor, ChainReorg, Deposit, SettlementBatch
from exchange.ledger.models import JournalEntry
from exchange.trading.models import Trade
from exchange.withdrawals.models import AssetWithdrawalLimits, Withdrawal
from exchange.withdrawals.services import WithdrawalRequest, withdrawal_request
from tests.async_db import orm
from tests.custody.support import Chain, MarketSetup, configure, deploy_chain
from tests.custody.support import ledger_total as total
from tests.factories import USDC
from tests.waiting import eventually, join_all
from tests.workflows.support import (
    balances_match,
    book_fills,
    check_histories,
    fund,
    running_worker,
    settled_exactly_once,
    stop_singletons,
)
from workflows.settlement.types import batch_workflow_id

pytestmark = pytest.mark.django_db(transaction=True)

DEPTH = 2
TRIALS = 24
SEED = 7
KINDS = ("deposit", "settlement", "payout")
WITHDRAWER = 3  # trader index: funded deep, only withdraws


def depositors(chain: Chain) -> list[str]:
    """Accounts that only deposit: the ones a deep reorg may freeze."""
    return [chain.traders[4], *chain.w3.eth.accounts[8:10]]


FUNDING = 1_000 * USDC

log = logging.getLogger(__name__)


class Miner:
    """A block every ``every`` seconds on top of automining (which mines each transaction at
    once): confirmations keep coming, like a live chain, and there is history to rewrite."""

    def __init__(self, rpc_url: str, every: float = 0.5) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

        # Held around each block and by the test around a reorg, so it rewrites exactly the
        # blocks it read.
        self.lock = threading.Lock()
        self.paused = threading.Event()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            if self.paused.is_set():
                continue
            with self.lock:
                self.w3.provider.make_request("evm_mine", [])

    def __enter__(self) -> Miner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        join_all([self.thread], timeout=30)


@dataclass
class Trial:
    number: int
    kind: str
    depth: int
    offset: int  # blocks on top of the move's block when the reorg comes (>= depth: misses it)
    jitter: float  # seconds, with the chain standing, before the reorg
    resend: bool = False
    outcome: list[str] = field(default_factory=list)


@pytest.fixture
def reorg_live(transactional_db, settings, fresh_anvil, temporal_env, names) -> Iterator:  # type: ignore[no-untyped-def]
    from tests.custody.support import make_market

    queue, prefix = names
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url, request_kwargs={"timeout": 10}))
    chain = deploy_chain(w3)
    client = temporal_env.client
    configure(
        settings,
        fresh_anvil.rpc_url,
        chain,
        CONFIRMATION_DEPTH=DEPTH,
        SETTLEMENT_BATCH_MAX_TRADES=3,
        SETTLEMENT_BATCH_MAX_SECONDS=0.2,
        SETTLEMENT_CUT_WAIT_SECONDS=1,
        CHAIN_POLL_SECONDS=0.2,
        TEMPORAL_WORKFLOW_ID_PREFIX=prefix,
        TEMPORAL_STICKY_TIMEOUT_SECONDS=1,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=client.namespace,
        TEMPORAL_TASK_QUEUE=queue,
        WITHDRAWAL_POLL_SECONDS=0.2,
        WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS=2,
    )
    setup = make_market(chain)
    AssetWithdrawalLimits.objects.update_or_create(
        asset=setup.usdc, defaults={"auto_approve_threshold": 10**15}
    )
    yield chain, setup, fresh_anvil.rpc_url
    reset_clients()


# ------------------------------------------------------------------------------ chain moves
def send_deposit(chain: Chain, trader: str, amount: int) -> list[str]:
    """Mint, approve and deposit USDC; the three transaction hashes, in nonce order."""
    erc20 = contract_at(chain.w3, "TestToken", chain.usdc)
    sent = {"from": trader}
    hashes = [
        erc20.functions.mint(trader, amount).transact(sent),
        erc20.functions.approve(chain.vault.address, amount).transact(sent),
        chain.vault.contract.functions.deposit(chain.usdc, amount).transact(sent),
    ]
    for tx in hashes:
        assert chain.w3.eth.wait_for_transaction_receipt(tx, timeout=10)["status"] == 1
    return ["0x" + bytes(tx).hex() for tx in hashes]


def raw_transactions(chain: Chain, hashes: list[str]) -> list[str]:
    return [
        chain.w3.provider.make_request("eth_getRawTransactionByHash", [tx])["result"]
        for tx in hashes
    ]


def rebroadcast(chain: Chain, hashes: list[str], raws: list[str]) -> int:
    """What a wallet does when its transactions vanish: send the dropped ones again."""
    sent = 0
    for tx, raw in zip(hashes, raws, strict=True):
        try:
            chain.w3.eth.get_transaction_receipt(tx)
        except TransactionNotFound:
            chain.w3.eth.send_raw_transaction(raw)
            sent += 1
    return sent


def reorg(chain: Chain, depth: int, miner: Miner) -> None:
    """Replace the last ``depth`` blocks, dropping their transactions. The new first block
    carries a marker transfer: re-mined empty blocks could otherwise come out identical (same
    parent, same timestamp), which is no reorg at all."""
    rpc = chain.w3.provider.make_request
    with miner.lock:
        # Automining would mine a worker's transaction (a settlement, a payout) between reading
        # the head and the reorg, which would then rewrite another span (seen once in CI).
        rpc("evm_setAutomine", [False])
        try:
            head = chain.w3.eth.block_number
            span = range(head - depth + 1, head + 1)
            before = [chain.w3.eth.get_block(n)["hash"] for n in span]
            marker = {"from": chain.admin, "to": chain.admin, "value": hex(1)}
            response = rpc("anvil_reorg", [depth, [[marker, 0]]])
            assert "error" not in response, response
            after = [chain.w3.eth.get_block(n)["hash"] for n in span]
        finally:
            rpc("evm_setAutomine", [True])
            if rpc("txpool_content", [])["result"]["pending"]:
                rpc("evm_mine", [])  # what arrived meanwhile, as automining would have
    assert all(a != b for a, b in zip(before, after, strict=True))


def newest_batch_block() -> int:
    return SettlementBatch.objects.order_by("-id").values_list("block_number", flat=True)[0]


def payout_block(withdrawal_id: str) -> int:
    return Withdrawal.objects.get(pk=withdrawal_id).block_number


def reorged_count() -> int:
    return Deposit.objects.filter(status="reorged").count()


def watcher_lag(chain: Chain) -> int:
    cursor = ChainCursor.objects.get(vault=chain.deployment.vault)
    return chain.w3.eth.block_number - cursor.block_number


# ------------------------------------------------------------------------------- database
def quiet(chain: Chain) -> bool:
    """Nothing in flight: every batch confirmed, every payout final, deposits scanned to the
    head and credited (or orphaned / reorged), and the watcher caught up with the head."""
    cursor = ChainCursor.objects.filter(vault=chain.deployment.vault).first()
    if cursor is None or cursor.block_number < chain.w3.eth.block_number - 1:
        return False
    # A reorg the watcher has not noticed yet leaves the cursor on a block that is gone.
    canonical = "0x" + bytes(chain.w3.eth.get_block(cursor.block_number)["hash"]).hex()
    return (
        canonical == cursor.block_hash
        and not Trade.objects.exclude(settlement_status="confirmed").exists()
        and not SettlementBatch.objects.exclude(status="confirmed").exists()
        and not Withdrawal.objects.exclude(state="confirmed").exists()
        and not Deposit.objects.filter(status="seen").exists()
    )


def request_withdrawal(address: str, amount: int, key: str) -> str:
    account = trader_get_or_create(address=address)
    destination = to_checksum_address("0x" + uuid.uuid4().hex + "00000000")
    request = WithdrawalRequest("USDC", amount, destination, key)
    return str(withdrawal_request(account=account, request=request).withdrawal.id)


def batch_landed(batch_ids_before: int) -> bool:
    return SettlementBatch.objects.filter(status__in=("submitted", "confirmed")).count() > (
        batch_ids_before
    )


def payout_landed(withdrawal_id: str) -> bool:
    return Withdrawal.objects.filter(
        pk=withdrawal_id, state__in=("submitted", "confirmed")
    ).exists()


# ------------------------------------------------------------------------------ the checks
def deposits_credited_once() -> None:
    credited = Deposit.objects.filter(journal_entry__isnull=False)
    entries = list(credited.values_list("journal_entry_id", flat=True))
    assert len(entries) == len(set(entries))
    assert JournalEntry.objects.filter(kind="deposit").count() == len(entries)
    assert not Deposit.objects.filter(status__in=("seen", "orphaned"), journal_entry__isnull=False)
    assert not Deposit.objects.filter(status__in=("credited", "reorged"), journal_entry=None)


def payouts_match(chain: Chain, setup: MarketSetup) -> int:
    """Every withdrawal confirmed and paid on this chain exactly once, to its destination."""
    paid = chain.vault.contract.events.WithdrawalPaid.get_logs(
        from_block=chain.deployment.deployed_block
    )
    keys = [bytes(e["args"]["withdrawalId"]) for e in paid]
    assert len(keys) == len(set(keys))
    withdrawals = list(Withdrawal.objects.all())
    assert all(w.state == "confirmed" and w.hold_status == "consumed" for w in withdrawals)
    assert sorted(keys) == sorted(withdrawal_key(str(w.id)) for w in withdrawals)
    erc20 = contract_at(chain.w3, "TestToken", chain.usdc)
    for w in withdrawals:
        assert erc20.functions.balanceOf(w.destination).call() == int(w.amount)
    address = chain.traders[WITHDRAWER]
    account = trader_get_or_create(address=address)
    assert chain.vault.balance_of(address, chain.usdc) == total(account, setup.usdc)
    return len(withdrawals)


def depositors_match(chain: Chain, setup: MarketSetup) -> dict[str, int]:
    """Vault = ledger for each depositor, except by exactly the credits a deep reorg removed
    (kept in the ledger, never reversed), whose accounts are frozen."""
    missing: dict[str, int] = {}
    for address in depositors(chain):
        account = Account.objects.get(address=address)
        reorged = sum(
            int(d.amount) for d in Deposit.objects.filter(account=account, status="reorged")
        )
        vault = chain.vault.balance_of(address, chain.usdc)
        assert total(account, setup.usdc) - vault == reorged, address
        if reorged:
            assert account.withdrawals_frozen, address
            missing[address] = reorged
        frozen_by = ChainReorg.objects.filter(frozen_accounts__contains=[address]).exists()
        assert account.withdrawals_frozen == frozen_by, address
    return missing


async def test_reorgs_at_every_depth_during_deposits_settlements_and_payouts(
    temporal_env, reorg_live, names
):
    chain, setup, rpc_url = reorg_live
    queue, prefix = names
    client = temporal_env.client
    rng = random.Random(SEED)
    # Each depth and each kind equally often, in a seeded random order.
    plan = [(KINDS[i % 3], 1 + (i // 3) % (DEPTH + 2)) for i in range(TRIALS)]
    rng.shuffle(plan)
    trials = [
        Trial(
            n,
            kind,
            depth,
            offset=rng.randint(0, depth),
            jitter=rng.uniform(0, 0.6),
            resend=rng.random() < 0.5,
        )
        for n, (kind, depth) in enumerate(plan)
    ]

    def setup_funds() -> None:
        fund(chain)  # the three traders of book_fills
        chain.deposit(chain.traders[WITHDRAWER], chain.usdc, FUNDING)
        for address in depositors(chain):
            trader_get_or_create(address=address)

    await orm(setup_funds)
    # Bury the funding below any reorg of the trials.
    chain.w3.provider.make_request("anvil_mine", [3 * DEPTH + 10])

    fills = 0
    accounts = depositors(chain)
    with Miner(rpc_url) as miner:
        async with running_worker(client, queue):
            await eventually(lambda: quiet(chain), timeout=60, what="funding credited")
            for trial in trials:
                before = await orm(
                    SettlementBatch.objects.filter(status__in=("submitted", "confirmed")).count
                )
                hashes: list[str] = []
                raws: list[str] = []
                if trial.kind == "deposit":
                    depositor = accounts[trial.number % len(accounts)]
                    amount = (1 + trial.number) * USDC
                    hashes = await asyncio.to_thread(send_deposit, chain, depositor, amount)
                    raws = await asyncio.to_thread(raw_transactions, chain, hashes)
                    block = chain.w3.eth.get_transaction_receipt(hashes[-1])["blockNumber"]
                elif trial.kind == "settlement":
                    count = 1 + trial.number % 3
                    await orm(book_fills, chain, setup, count, fills)
                    fills += count
                    await eventually(lambda b=before: batch_landed(b), timeout=30, every=0.02)
                    block = await orm(newest_batch_block)
                else:
                    withdrawal_id = await orm(
                        request_withdrawal, chain.traders[WITHDRAWER], USDC, f"t{trial.number}"
                    )
                    await eventually(
                        lambda w=withdrawal_id: payout_landed(w), timeout=30, every=0.02
                    )
                    block = await orm(payout_block, withdrawal_id)
                # A random number of blocks after the move, the chain stands while the
                # watcher scans to its head (else it has nothing to notice: it would just scan
                # the new chain), a random moment more, and the reorg comes.
                await eventually(
                    lambda b=block + trial.offset: chain.w3.eth.block_number >= b,
                    timeout=30,
                    every=0.02,
                )
                miner.paused.set()
                try:
                    await eventually(lambda: watcher_lag(chain) <= 0, timeout=30, every=0.05)
                    await asyncio.sleep(trial.jitter)
                    trial.outcome.append(f"offset {chain.w3.eth.block_number - block}")
                    await asyncio.to_thread(reorg, chain, trial.depth, miner)
                finally:
                    miner.paused.clear()
                if trial.kind == "deposit" and trial.resend:
                    resent = await asyncio.to_thread(rebroadcast, chain, hashes, raws)
                    trial.outcome.append(f"rebroadcast {resent}")
                await eventually(lambda: quiet(chain), timeout=60, what=f"trial {trial}")
                trial.outcome.append(f"reorgs seen {await orm(ChainReorg.objects.count)}")
                trial.outcome.append(f"reorged deposits {await orm(reorged_count)}")
                log.info("trial %s", trial)
            await eventually(lambda: quiet(chain), timeout=60, what="all settled")
            # The watcher's last scans re-check anything a late reorg left behind: wait until
            # it has scanned a block mined after everything settled.
            head = await asyncio.to_thread(lambda: chain.w3.eth.block_number)
            await eventually(lambda: watcher_lag(chain) < chain.w3.eth.block_number - head,
                             what="the watcher scanned past the settled head")  # fmt: skip
            await eventually(lambda: quiet(chain), timeout=60, what="all settled again")
        await stop_singletons(client, prefix)

    batches = await orm(settled_exactly_once, chain)
    # The watcher (which started the reopened batches' runs) and every batch's latest run
    # replay without non-determinism.
    ids = [prefix + "chain-watcher", *(batch_workflow_id(b.batch_id, prefix) for b in batches)]
    assert await check_histories(client, ids) == len(ids)
    assert len(batches) >= 1 and await orm(Trade.objects.count) == fills
    await orm(balances_match, chain, setup)
    paid = await orm(payouts_match, chain, setup)
    assert paid == sum(t.kind == "payout" for t in trials)
    await orm(deposits_credited_once)
    missing = await orm(depositors_match, chain, setup)
    await orm(call_command, "ledger_check", stdout=open("/dev/null", "w"))  # noqa: SIM115

    reorgs = await orm(lambda: list(ChainReorg.objects.all()))
    # Every trial's reorg rewrites blocks the watcher had scanned (each waits for the watcher to
    # reach the head, with mining paused until the reorg): the watcher notices every one.
    assert len(reorgs) == TRIALS, [(r.depth, r.ancestor_number) for r in reorgs]
    assert max(r.depth for r in reorgs) > DEPTH
    assert all(r.critical == bool(r.frozen_accounts) for r in reorgs)
    # The plan drops credited deposits (offset >= 1 below a deeper reorg), and confirmed
    # batches or payouts, which the watcher re-checked against the contract.
    assert missing
    assert any(r.settlements_rechecked for r in reorgs)
    log.info(
        "%d trials, %d reorgs seen, %d batches, %d payouts, frozen: %s",
        len(trials), len(reorgs), len(batches), paid, missing,
    )  # fmt: skip
