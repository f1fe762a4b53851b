"""Settlement end to end: real deposits on anvil credited by the chain watcher, fills booked as the
matching worker books them, and the real worker wiring (workers.temporal) settling them on the
vault through the Temporal dev server, against the real database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY
from temporalio.common import SearchAttributeKey

from exchange.accounts.services import trader_get_or_create
from exchange.custody.chain import endpoint_name
from exchange.custody.models import SettlementBatch
from exchange.ledger.services import credit_deposit
from exchange.matching import Side
from exchange.trading.models import Trade
from tests.async_db import orm
from tests.custody.support import Chain, MarketSetup, configure, deploy_chain, fill
from tests.factories import USDC, WETH
from tests.waiting import eventually, eventually_async, within
from tests.workflows.support import (
    PRICE,
    all_confirmed,
    balances_match,
    batch_results,
    book_fills,
    check_histories,
    credited,
    fund,
    running_worker,
    settled_exactly_once,
    stop_singletons,
)
from workflows.settlement import types

pytestmark = pytest.mark.django_db(transaction=True)

STATUS = SearchAttributeKey.for_keyword("SettlementStatus")
BATCH_ID = SearchAttributeKey.for_keyword("BatchId")


@pytest.fixture
def live(transactional_db, settings, anvil, w3, names) -> Iterator[tuple[Chain, MarketSetup]]:  # type: ignore[no-untyped-def]
    from tests.custody.support import make_market

    _, prefix = names
    chain = deploy_chain(w3)
    configure(
        settings,
        anvil.rpc_url,
        chain,
        SETTLEMENT_BATCH_MAX_TRADES=4,
        SETTLEMENT_BATCH_MAX_SECONDS=0.3,
        SETTLEMENT_CUT_WAIT_SECONDS=1,
        CHAIN_POLL_SECONDS=0.2,
        TEMPORAL_WORKFLOW_ID_PREFIX=prefix,
        TEMPORAL_STICKY_TIMEOUT_SECONDS=1,
    )
    yield chain, make_market(chain)


async def test_trades_settle_on_chain_and_the_vault_equals_the_ledger(temporal_env, live, names):
    chain, setup = live
    queue, prefix = names
    client = temporal_env.client
    amounts = await asyncio.to_thread(fund, chain)

    async with running_worker(client, queue):
        await eventually(lambda: credited(setup, amounts), what="deposits credited")
        await orm(book_fills, chain, setup, 6)
        # A second wave while the first settles.
        await eventually(SettlementBatch.objects.exists, what="the first batch cut")
        await orm(book_fills, chain, setup, 7, 6)
        await eventually(all_confirmed, what="all trades confirmed")
        batches = await orm(settled_exactly_once, chain)
        # A batch's row turns confirmed one workflow task before its workflow closes: await
        # the workflows while the worker that must finish them still runs.
        last = await batch_results(client, batches, prefix)

    assert len(batches) >= 4  # 13 trades, at most 4 per batch
    ledger = await orm(balances_match, chain, setup)
    assert ledger[("fees", "USDC")] > 0
    described = await last.describe()
    assert described.typed_search_attributes.get(STATUS) == "confirmed"
    assert described.typed_search_attributes.get(BATCH_ID) == str(batches[-1].batch_id)

    await stop_singletons(client, prefix)
    ids = [prefix + "settlement-scheduler", prefix + "chain-watcher"]
    ids += [types.batch_workflow_id(b.batch_id, prefix) for b in batches[:2]]
    assert await check_histories(client, ids, record_as="e2e") == 4


def activity_retries() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "clearway_activity_retries"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def circuit_state(url: str) -> float | None:
    return REGISTRY.get_sample_value("clearway_rpc_circuit_state", {"endpoint": endpoint_name(url)})


async def test_an_rpc_outage_during_settlement_is_survived(
    temporal_env, live, names, rpc_proxy, settings
):
    chain, setup = live
    queue, prefix = names
    client = temporal_env.client
    settings.CHAIN_RPC_URL = rpc_proxy.url
    settings.RPC_BREAKER_FAILURES = 3
    settings.RPC_BREAKER_COOLDOWN_SECONDS = 1
    amounts = await asyncio.to_thread(fund, chain)

    async with running_worker(client, queue):
        await eventually(lambda: credited(setup, amounts), what="deposits credited")
        await orm(book_fills, chain, setup, 3)
        await eventually(all_confirmed, what="first trades confirmed")

        rpc_proxy.block()
        await orm(book_fills, chain, setup, 6, 3)
        await eventually(lambda: circuit_state(rpc_proxy.url) == 1, what="circuit open")
        assert chain.vault.next_batch_id() == 1 + await orm(
            SettlementBatch.objects.filter(status="confirmed").count
        )
        assert await orm(Trade.objects.filter(settlement_status="confirmed").count) == 3

        retried_before = activity_retries()
        rpc_proxy.unblock()
        await eventually(all_confirmed, timeout=90, what="all trades confirmed after the outage")
        # Temporal's retry policy rode the outage out, and the metric shows it.
        assert activity_retries() > retried_before
        await eventually(lambda: circuit_state(rpc_proxy.url) == 0, what="circuit closed")

    await orm(settled_exactly_once, chain)
    await orm(balances_match, chain, setup)
    await stop_singletons(client, prefix)


async def test_a_rejected_batch_fails_and_its_id_goes_to_the_next_batch(
    temporal_env, live, names, settings, caplog
):
    chain, setup = live
    queue, prefix = names
    client = temporal_env.client
    settings.SETTLEMENT_MAX_TRADE_ATTEMPTS = 1
    amounts = await asyncio.to_thread(fund, chain)
    dave_address = chain.traders[3]

    def book_unfunded() -> int:
        # Credited in the ledger only: the vault holds nothing of Dave's, so it rejects.
        dave = trader_get_or_create(address=dave_address)
        credit_deposit(account=dave, asset=setup.usdc, amount=10_000 * USDC, reference="fake:d")
        bob = trader_get_or_create(address=chain.traders[1])
        return fill(setup.market, maker=bob, taker=dave, taker_side=Side.BUY, price=PRICE,
                    quantity=WETH // 10).pk  # fmt: skip

    caplog.set_level(logging.ERROR, logger="exchange.custody.settlement")
    async with running_worker(client, queue):
        await eventually(lambda: credited(setup, amounts), what="deposits credited")
        bad = await orm(book_unfunded)
        failed = await eventually(
            lambda: SettlementBatch.objects.filter(status="failed").first(), what="batch failed"
        )
        good = await orm(book_fills, chain, setup, 2)
        await eventually(
            lambda: not Trade.objects.filter(pk__in=good).exclude(settlement_status="confirmed"),
            what="good trades confirmed",
        )
        # The id was reused: its first run failed the batch, its latest one settled the next.
        handle = client.get_workflow_handle(types.batch_workflow_id(1, prefix))
        result = await within(handle.result(), what="batch 1's second run")

        async def both_runs_closed() -> list[str]:
            query = f"WorkflowId = '{handle.id}'"
            runs = [run.status.name async for run in client.list_workflows(query)]
            return runs if runs == ["COMPLETED", "COMPLETED"] else []

        await eventually_async(both_runs_closed, what="both runs of batch 1 listed as completed")

    assert result["status"] == "confirmed"
    assert failed.batch_id == 1 and "InsufficientBalance" in failed.error
    assert (await orm(Trade.objects.get, pk=bad)).settlement_status == "failed"
    retry = await orm(SettlementBatch.objects.get, status="confirmed")
    assert retry.batch_id == 1  # the id the failed batch gave back
    assert chain.vault.next_batch_id() == 2
    assert any("FAILED" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    await stop_singletons(client, prefix)
