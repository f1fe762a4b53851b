"""Helpers for the settlement integration tests: the real worker wiring in-process, histories,
and the deposits and fills the scenarios are made of (the RPC proxy is exchange.devstack.proxy)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from exchange.accounts.services import trader_get_or_create
from exchange.custody.models import BatchTrade, SettlementBatch
from exchange.matching import Side
from exchange.trading.models import Trade
from tests.async_db import ClosingExecutor
from tests.custody.support import Chain, MarketSetup, fill, ledger_total, vault_and_ledger
from tests.factories import USDC, WETH
from tests.waiting import within
from workers.temporal import WORKFLOWS, build_worker, ensure_workflows
from workflows.chain import types as chain_types
from workflows.settlement import types as settlement_types

HISTORIES = Path(__file__).parent / "histories"


@asynccontextmanager
async def running_worker(client: Client, queue: str) -> AsyncIterator[None]:
    """workers.temporal's worker, in-process, plus its scheduler and chain watcher."""
    executor = ClosingExecutor(max_workers=8, thread_name_prefix="activity")
    try:
        async with build_worker(client, executor, task_queue=queue):
            await ensure_workflows(client, task_queue=queue)
            yield
    finally:
        executor.shutdown(wait=True)


async def stop_singletons(client: Client, prefix: str) -> None:
    for workflow_id in (settlement_types.SCHEDULER_ID, chain_types.WATCHER_ID):
        with suppress(Exception):  # already gone
            await client.get_workflow_handle(prefix + workflow_id).terminate()


async def check_histories(
    client: Client, workflow_ids: list[str], record_as: str = "", record_first: int = 4
) -> int:
    """Replay each workflow's latest run with the current code (raises on non-determinism);
    with CLEARWAY_RECORD_HISTORIES=1, also save the first ``record_first`` under histories/
    (as ``<record_as>-<id without the test's prefix>.json``) for test_replay."""
    histories: list[WorkflowHistory] = []
    for workflow_id in workflow_ids:
        histories.append(await client.get_workflow_handle(workflow_id).fetch_history())
    replayer = Replayer(workflows=list(WORKFLOWS))
    for history in histories:
        await replayer.replay_workflow(history)
    if record_as and os.environ.get("CLEARWAY_RECORD_HISTORIES"):
        HISTORIES.mkdir(exist_ok=True)
        for history, workflow_id in list(zip(histories, workflow_ids, strict=True))[:record_first]:
            kind = workflow_id.split("-", 1)[1]  # drop the test's prefix
            path = HISTORIES / f"{record_as}-{kind}.json"
            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    return len(histories)


PRICE = 3_000 * USDC


def fund(chain: Chain) -> dict[str, tuple[int, int]]:
    """Real vault deposits: {trader: (weth, usdc)}."""
    amounts = {
        chain.traders[0]: (0, 200_000 * USDC),
        chain.traders[1]: (30 * WETH, 0),
        chain.traders[2]: (10 * WETH, 50_000 * USDC),
    }
    for trader, (weth, usdc) in amounts.items():
        if weth:
            chain.deposit(trader, chain.weth, weth)
        if usdc:
            chain.deposit(trader, chain.usdc, usdc)
    return amounts


def credited(setup: MarketSetup, amounts: dict[str, tuple[int, int]]) -> bool:
    return all(
        ledger_total(trader_get_or_create(address=trader), setup.weth) == weth
        and ledger_total(trader_get_or_create(address=trader), setup.usdc) == usdc
        for trader, (weth, usdc) in amounts.items()
    )


def book_fills(chain: Chain, setup: MarketSetup, count: int, start: int = 0) -> list[int]:
    alice, bob, carol = (trader_get_or_create(address=a) for a in chain.traders[:3])
    pairs = [(bob, alice, Side.BUY), (alice, carol, Side.SELL), (carol, alice, Side.BUY),
             (bob, carol, Side.BUY)]  # fmt: skip
    made = []
    for i in range(start, start + count):
        maker, taker, side = pairs[i % len(pairs)]
        price, quantity = PRICE + 10_000 * (i % 7), WETH // 100 * (1 + i % 5)
        trade = fill(
            setup.market, maker=maker, taker=taker, taker_side=side, price=price, quantity=quantity
        )
        made.append(trade.pk)
    return made


def all_confirmed() -> bool:
    return not Trade.objects.exclude(settlement_status="confirmed").exists()


def settled_exactly_once(chain: Chain) -> list[SettlementBatch]:
    """Every trade is in exactly one confirmed batch, batch ids run 1..N without gaps, and the
    chain holds exactly those batches, each once, with the same roots."""
    confirmed = list(SettlementBatch.objects.filter(status="confirmed").order_by("batch_id"))
    assert [b.batch_id for b in confirmed] == list(range(1, len(confirmed) + 1))
    live_members = BatchTrade.objects.exclude(batch__status="failed")
    assert live_members.count() == Trade.objects.count()
    assert set(live_members.values_list("trade_id", flat=True)) == set(
        Trade.objects.values_list("pk", flat=True)
    )
    events = chain.vault.contract.events.BatchSettled.get_logs(
        from_block=chain.deployment.deployed_block
    )
    on_chain = [(int(e["args"]["batchId"]), "0x" + e["args"]["tradesRoot"].hex()) for e in events]
    assert on_chain == [(b.batch_id, b.trades_root) for b in confirmed]
    assert chain.vault.next_batch_id() == len(confirmed) + 1
    return confirmed


def balances_match(chain: Chain, setup: MarketSetup) -> dict:
    vault, ledger = vault_and_ledger(chain, setup, chain.traders[:3])
    assert vault == ledger
    return ledger


async def batch_results(client: Client, batches: list[SettlementBatch], prefix: str):  # type: ignore[no-untyped-def]
    """Await every batch's workflow (bounded; call it while the worker runs); each must have
    confirmed. Returns the last batch's handle."""
    handle = None
    for batch in batches:
        handle = client.get_workflow_handle(
            settlement_types.batch_workflow_id(batch.batch_id, prefix)
        )
        result = await within(handle.result(), what=f"batch {batch.batch_id}'s workflow")
        assert result["status"] == "confirmed", (batch.batch_id, result)
    return handle
