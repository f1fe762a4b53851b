"""The custody and ops metrics move with what they measure: chain watcher freshness, deep
reorgs, breaker refusals, the settlement and withdrawal queues, and vault reconciliation."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from exchange.accounts.models import Account
from exchange.chain import mint_test_tokens
from exchange.custody import deposits
from exchange.custody.errors import RpcUnavailable
from exchange.custody.rpc import CircuitBreaker
from exchange.ledger.services import credit_deposit
from exchange.matching import Side
from exchange.ops import gauges
from exchange.withdrawals.models import Withdrawal
from tests.factories import USDC, WETH

from .support import Chain, MarketSetup, fill
from .test_reorgs import DEPTH, Setup, mine, reorg, reorgable, scan_to_head  # noqa: F401

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_scan_sets_the_head_and_the_last_scan_time(chain: Chain, custody: MarketSetup, alice):
    before = time.time()
    deposits.chain_scan(max_blocks=500, depth=1)
    head = chain.w3.eth.block_number
    assert value("clearway_chain_head_block") == head
    assert value("clearway_chain_scanned_block") == head
    assert value("clearway_chain_last_scan_timestamp_seconds") >= before


def test_only_a_reorg_reaching_the_confirmation_depth_counts_as_deep(reorgable: Setup):  # noqa: F811
    chain = reorgable.chain
    mine(chain, DEPTH + 2)
    scan_to_head()
    deep = value("clearway_chain_deep_reorgs_total")
    reorgs = value("clearway_chain_reorgs_total")

    reorg(chain, DEPTH - 1)  # only blocks not yet final
    scan_to_head()
    assert value("clearway_chain_reorgs_total") == reorgs + 1
    assert value("clearway_chain_deep_reorgs_total") == deep

    reorg(chain, DEPTH)  # the deepest replaced block had DEPTH confirmations: final
    scan_to_head()
    assert value("clearway_chain_reorgs_total") == reorgs + 2
    assert value("clearway_chain_deep_reorgs_total") == deep + 1


def test_an_open_breaker_counts_the_calls_it_refuses() -> None:
    now = [0.0]
    breaker = CircuitBreaker("metrics-test", threshold=1, cooldown=10, clock=lambda: now[0])
    breaker.record_failure(ConnectionError("down"))
    assert value("clearway_rpc_circuit_state", endpoint="metrics-test") == 1
    for _ in range(2):
        with pytest.raises(RpcUnavailable):
            breaker.before_call()
    assert value("clearway_rpc_rejected_total", endpoint="metrics-test") == 2
    now[0] = 11
    breaker.before_call()  # the trial call goes through: not a refusal
    assert value("clearway_rpc_circuit_state", endpoint="metrics-test") == 2
    assert value("clearway_rpc_rejected_total", endpoint="metrics-test") == 2


def test_queue_gauges_count_and_age_what_waits(custody: MarketSetup, alice, bob) -> None:
    gauges.sample_queues()
    assert value("clearway_settlement_backlog_trades") == 0
    assert value("clearway_settlement_oldest_unsettled_seconds") == 0

    credit_deposit(account=alice, asset=custody.weth, amount=WETH, reference="fake:weth")
    credit_deposit(account=bob, asset=custody.usdc, amount=10_000 * USDC, reference="fake:usdc")
    trade = fill(
        custody.market, maker=alice, taker=bob, taker_side=Side.BUY,
        price=2000 * USDC, quantity=WETH // 10,
    )  # fmt: skip
    later = fill(
        custody.market, maker=alice, taker=bob, taker_side=Side.BUY,
        price=2000 * USDC, quantity=WETH // 10,
    )  # fmt: skip
    later.settlement_status = "confirmed"
    later.save()
    Withdrawal.objects.create(
        account=alice, asset=custody.usdc, amount=5 * USDC, destination="0x" + "11" * 20,
        idempotency_key="k1", request_fingerprint="f1",
        state=Withdrawal.State.PENDING_APPROVAL, created_at=trade.created_at - timedelta(hours=2),
    )  # fmt: skip
    Withdrawal.objects.create(
        account=alice, asset=custody.usdc, amount=5 * USDC, destination="0x" + "11" * 20,
        idempotency_key="k2", request_fingerprint="f2",
        state=Withdrawal.State.CONFIRMED, created_at=trade.created_at - timedelta(hours=9),
    )  # fmt: skip
    Account.objects.filter(pk=bob.pk).update(withdrawals_frozen=True)

    gauges.sample_queues(now=trade.created_at + timedelta(seconds=90))

    assert value("clearway_settlement_backlog_trades") == 1
    assert value("clearway_settlement_oldest_unsettled_seconds") == 90
    assert value("clearway_withdrawals_awaiting_approval") == 1
    assert value("clearway_withdrawals_oldest_awaiting_approval_seconds") == 2 * 3600 + 90
    assert value("clearway_accounts_withdrawals_frozen") == 1


def test_reconciliation_is_zero_when_vault_and_ledger_agree_and_shows_a_difference(
    chain: Chain, custody: MarketSetup, alice
) -> None:
    chain.deposit(alice.address, chain.usdc, 30 * USDC)
    deposits.chain_scan(max_blocks=500, depth=1)  # credited at depth 1
    assert gauges.reconcile(gauges.check_ledger()) == {"USDC": 0, "WETH": 0}
    assert value("clearway_reconciliation_difference_base_units", asset="USDC") == 0

    # Tokens sent to the vault without a deposit: held on chain, owed to nobody in the ledger.
    mint_test_tokens(chain.w3, chain.usdc, chain.deployment.vault, 7 * USDC, sender=chain.admin)
    assert gauges.reconcile(gauges.check_ledger())["USDC"] == 7 * USDC
    assert value("clearway_reconciliation_difference_base_units", asset="USDC") == 7 * USDC
