"""Cutting, settling, confirming and failing batches against a real vault on anvil."""

from __future__ import annotations

import pytest

from exchange.accounts.models import SYSTEM_FEES
from exchange.accounts.services import system_account
from exchange.chain import Delta, TradeTree
from exchange.custody import deposits, settlement
from exchange.custody.errors import BatchAbandoned, SettlementRejected
from exchange.custody.models import BatchCounter, BatchTrade, SettlementBatch
from exchange.ledger.services import credit_deposit
from exchange.matching import Side
from exchange.trading.models import Trade
from tests.factories import USDC, WETH

from .support import Chain, MarketSetup, fill, vault_and_ledger

pytestmark = pytest.mark.django_db

PRICE = 3_000 * USDC


@pytest.fixture
def funded(chain: Chain, custody: MarketSetup, alice, bob) -> MarketSetup:
    """Alice holds USDC and Bob WETH, on the vault and (credited by a scan) in the ledger."""
    chain.deposit(alice.address, chain.usdc, 100_000 * USDC)
    chain.deposit(bob.address, chain.weth, 20 * WETH)
    deposits.chain_scan(max_blocks=500, depth=1)
    return custody


def trades(market, alice, bob, count: int) -> list[Trade]:
    made = []
    for i in range(count):
        # Alternate who takes, so both fee directions and both taker sides appear.
        if i % 2 == 0:
            made.append(
                fill(
                    market,
                    maker=bob,
                    taker=alice,
                    taker_side=Side.BUY,
                    price=PRICE,
                    quantity=WETH // 10,
                )
            )
        else:
            made.append(
                fill(
                    market,
                    maker=alice,
                    taker=bob,
                    taker_side=Side.SELL,
                    price=PRICE + 10_000,
                    quantity=WETH // 20,
                )
            )
    return made  # fmt: skip


def test_trade_changes_sum_to_zero_per_token_with_fees_to_the_fee_account(
    funded: MarketSetup, alice, bob, chain: Chain
):
    taker_buy, taker_sell = trades(funded.market, alice, bob, 2)

    buy = settlement.trade_changes(taker_buy, fee_account=chain.fee)
    sell = settlement.trade_changes(taker_sell, fee_account=chain.fee)

    n = taker_buy.notional
    assert buy == [
        Delta(alice.address, chain.weth, WETH // 10),
        Delta(bob.address, chain.weth, -(WETH // 10)),
        Delta(alice.address, chain.usdc, -(n + taker_buy.taker_fee)),
        Delta(bob.address, chain.usdc, n - taker_buy.maker_fee),
        Delta(chain.fee, chain.usdc, taker_buy.maker_fee + taker_buy.taker_fee),
    ]
    # Taker sells: the maker (Alice) buys and pays the maker fee; Bob pays the taker fee.
    m = taker_sell.notional
    assert Delta(alice.address, chain.usdc, -(m + taker_sell.maker_fee)) in sell
    assert Delta(bob.address, chain.usdc, m - taker_sell.taker_fee) in sell
    for token in (chain.weth, chain.usdc):
        assert sum(d.amount for d in buy + sell if d.token == token) == 0


def test_cut_takes_matched_trades_in_order_and_ids_from_the_counter(
    funded: MarketSetup, alice, bob, chain: Chain
):
    made = trades(funded.market, alice, bob, 5)

    batch = settlement.batch_cut(max_trades=3, key="k1")

    assert batch is not None and batch.batch_id == 1
    members = list(BatchTrade.objects.filter(batch=batch).order_by("trade_id"))
    assert [m.trade_id for m in members] == [t.pk for t in made[:3]]
    assert batch.trades_root == "0x" + TradeTree([t.trade_id for t in made[:3]]).root.hex()
    assert set(Trade.objects.filter(settlement_status="batched")) == set(made[:3])
    # Same key: the same batch, not another one.
    assert settlement.batch_cut(max_trades=3, key="k1") == batch
    # While batch 1 is not on chain, no batch 2 (the contract takes ids strictly in order).
    assert settlement.batch_cut(max_trades=3, key="k2") is None
    settlement.batch_submit(batch_pk=batch.pk)
    second = settlement.batch_cut(max_trades=3, key="k2")
    assert second.batch_id == 2 and second.trade_count == 2
    assert BatchCounter.objects.get(vault=chain.deployment.vault).next_batch_id == 3
    assert settlement.batch_cut(max_trades=3, key="k3") is None


def test_batch_due_after_max_trades_or_max_age(funded: MarketSetup, alice, bob):
    from datetime import timedelta

    from django.utils import timezone

    assert not settlement.batch_due(max_trades=2, max_age_seconds=60)
    [first] = trades(funded.market, alice, bob, 1)
    assert not settlement.batch_due(max_trades=2, max_age_seconds=60)
    assert settlement.batch_due(
        max_trades=2, max_age_seconds=60, now=first.created_at + timedelta(seconds=61)
    )
    trades(funded.market, alice, bob, 1)
    assert settlement.batch_due(max_trades=2, max_age_seconds=60, now=timezone.now())


def test_settled_batches_move_the_vault_exactly_as_the_ledger(
    funded: MarketSetup, alice, bob, chain: Chain
):
    trades(funded.market, alice, bob, 7)
    while (batch := settlement.batch_cut(max_trades=3)) is not None:
        submitted = settlement.batch_submit(batch_pk=batch.pk)
        assert submitted.confirmations == 1 and not submitted.already_settled
        assert settlement.batch_confirmations(batch_pk=batch.pk) >= 1
        settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)

    assert not Trade.objects.exclude(settlement_status="confirmed").exists()
    assert chain.vault.next_batch_id() == 4
    vault, ledger = vault_and_ledger(chain, funded, [alice.address, bob.address])
    assert vault == ledger
    assert ledger[("fees", "USDC")] > 0


def test_a_replayed_submission_is_detected_as_already_settled(
    funded: MarketSetup, alice, bob, chain: Chain
):
    trades(funded.market, alice, bob, 2)
    batch = settlement.batch_cut(max_trades=10)
    first = settlement.batch_submit(batch_pk=batch.pk)
    before = vault_and_ledger(chain, funded, [alice.address, bob.address])[0]

    # As a retry after a crash would: the row still says built, the chain already has it.
    SettlementBatch.objects.filter(pk=batch.pk).update(status="built", tx_hash="")
    again = settlement.batch_submit(batch_pk=batch.pk)

    assert again.already_settled
    assert again.batch.tx_hash == first.batch.tx_hash
    assert again.batch.attempts == 2
    assert vault_and_ledger(chain, funded, [alice.address, bob.address])[0] == before
    assert chain.vault.next_batch_id() == 2


def test_a_rejected_batch_fails_requeues_its_trades_and_gives_its_id_back(
    funded: MarketSetup, alice, bob, chain: Chain, settings
):
    settings.SETTLEMENT_MAX_TRADE_ATTEMPTS = 2
    # Credit Carol in the ledger only: the vault has nothing of hers, so her trade cannot settle.
    from exchange.accounts.services import trader_get_or_create

    carol = trader_get_or_create(address=chain.traders[2])
    credit_deposit(account=carol, asset=funded.usdc, amount=10_000 * USDC, reference="fake:1")
    [bad] = [fill(funded.market, maker=bob, taker=carol, taker_side=Side.BUY, price=PRICE,
                  quantity=WETH // 10)]  # fmt: skip

    batch = settlement.batch_cut(max_trades=10)
    with pytest.raises(SettlementRejected, match="InsufficientBalance"):
        settlement.batch_submit(batch_pk=batch.pk)
    settlement.batch_mark_failed(batch_pk=batch.pk, reason="SettlementRejected: test")

    bad.refresh_from_db()
    assert bad.settlement_status == "matched"
    assert BatchCounter.objects.get(vault=chain.deployment.vault).next_batch_id == 1
    with pytest.raises(BatchAbandoned):
        settlement.batch_submit(batch_pk=batch.pk)

    # Second failure: given up on, and the id is still free for the good trades.
    retry = settlement.batch_cut(max_trades=10)
    assert retry.batch_id == 1
    with pytest.raises(SettlementRejected):
        settlement.batch_submit(batch_pk=retry.pk)
    settlement.batch_mark_failed(batch_pk=retry.pk, reason="SettlementRejected: test")
    bad.refresh_from_db()
    assert bad.settlement_status == "failed"

    good = trades(funded.market, alice, bob, 1)
    batch = settlement.batch_cut(max_trades=10)
    assert batch.batch_id == 1 and list(batch.members.values_list("trade", flat=True)) == [
        good[0].pk
    ]
    settlement.batch_submit(batch_pk=batch.pk)
    assert chain.vault.next_batch_id() == 2
    assert SettlementBatch.objects.filter(batch_id=1, status="failed").count() == 2


def test_confirmed_is_final(funded: MarketSetup, alice, bob):
    trades(funded.market, alice, bob, 1)
    batch = settlement.batch_cut(max_trades=10)
    with pytest.raises(BatchAbandoned):
        settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)
    settlement.batch_submit(batch_pk=batch.pk)
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)  # idempotent
    with pytest.raises(BatchAbandoned):
        settlement.batch_mark_failed(batch_pk=batch.pk, reason="no")
    assert settlement.batch_submit(batch_pk=batch.pk).already_settled


def test_fee_account_mirrors_system_fees(funded: MarketSetup, alice, bob, chain: Chain):
    trades(funded.market, alice, bob, 3)
    batch = settlement.batch_cut(max_trades=10)
    settlement.batch_submit(batch_pk=batch.pk)
    fees = system_account(SYSTEM_FEES)
    from .support import ledger_total

    assert chain.vault.balance_of(chain.fee, chain.usdc) == ledger_total(fees, funded.usdc) > 0


def test_both_traders_hear_each_settlement_status_on_their_socket_group(
    funded: MarketSetup, alice, bob, channel_layer, django_capture_on_commit_callbacks
):
    from asgiref.sync import async_to_sync

    from exchange.matching_worker.publish import account_group

    [trade] = trades(funded.market, alice, bob, 1)
    inboxes = {}
    for account in (alice, bob):
        inboxes[account.pk] = async_to_sync(channel_layer.new_channel)()
        async_to_sync(channel_layer.group_add)(account_group(account.pk), inboxes[account.pk])

    with django_capture_on_commit_callbacks(execute=True):
        batch = settlement.batch_cut(max_trades=10)
    with django_capture_on_commit_callbacks(execute=True):
        settlement.batch_submit(batch_pk=batch.pk)
    with django_capture_on_commit_callbacks(execute=True):
        settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)

    for account in (alice, bob):
        statuses = []
        for _ in range(3):
            message = async_to_sync(channel_layer.receive)(inboxes[account.pk])
            assert message["type"] == "settlement.events"
            [event] = message["events"]
            assert (event["trade_id"], event["batch_id"]) == (trade.trade_id, batch.batch_id)
            statuses.append(event["status"])
        assert statuses == ["batched", "submitted", "confirmed"]
        assert event["tx_hash"] == SettlementBatch.objects.get(pk=batch.pk).tx_hash
