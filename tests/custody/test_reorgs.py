"""Reorgs on a real anvil chain (``anvil_reorg``): recorded and alerted, orphaned deposits dropped
and re-recorded when they come back, credited deposits never reversed (their accounts frozen
instead), and confirmed settlements that left the chain re-checked against the contract."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from prometheus_client import REGISTRY
from web3 import Web3

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.chain.artifacts import contract_at
from exchange.custody import deposits, settlement
from exchange.custody.chain import reset_clients
from exchange.custody.models import ChainReorg, Deposit, ProcessedBlock
from exchange.ledger.models import JournalEntry
from exchange.matching import Side
from exchange.withdrawals.errors import WithdrawalsFrozen
from exchange.withdrawals.models import AssetWithdrawalLimits, Withdrawal
from exchange.withdrawals.services import (
    WithdrawalRequest,
    withdrawal_complete,
    withdrawal_pay,
    withdrawal_request,
)
from tests.factories import USDC, WETH

from .support import Chain, MarketSetup, configure, deploy_chain, fill, ledger_total

pytestmark = pytest.mark.django_db

DEPTH = 2
DESTINATION = "0x" + "7e" * 20


@dataclass
class Setup:
    chain: Chain
    market: MarketSetup
    alice: Account
    bob: Account


@pytest.fixture
def reorgable(fresh_anvil, settings) -> Iterator[Setup]:  # type: ignore[no-untyped-def]
    """A vault on a private chain (automining) whose history the test rewrites."""
    from .support import make_market

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url, request_kwargs={"timeout": 10}))
    chain = deploy_chain(w3)
    configure(settings, fresh_anvil.rpc_url, chain, CONFIRMATION_DEPTH=DEPTH)
    market = make_market(chain)
    alice = trader_get_or_create(address=chain.traders[0])
    bob = trader_get_or_create(address=chain.traders[1])
    yield Setup(chain, market, alice, bob)
    reset_clients()


def mine(chain: Chain, blocks: int = 1) -> None:
    chain.w3.provider.make_request("anvil_mine", [blocks])


def reorg(chain: Chain, depth: int, include: list | None = None) -> None:
    """Replace the last ``depth`` blocks; their transactions are dropped unless re-included as
    [raw transaction, block offset] pairs."""
    response = chain.w3.provider.make_request("anvil_reorg", [depth, include or []])
    assert "error" not in response, response


def raw(chain: Chain, tx_hash: str) -> str:
    return chain.w3.provider.make_request("eth_getRawTransactionByHash", [tx_hash])["result"]


def scan_to_head() -> list[deposits.ScanResult]:
    results = [deposits.chain_scan(max_blocks=500, depth=DEPTH)]
    while results[-1].reorg or not results[-1].caught_up:
        results.append(deposits.chain_scan(max_blocks=500, depth=DEPTH))
    return results


def head_hash(chain: Chain) -> str:
    return "0x" + bytes(chain.w3.eth.get_block("latest")["hash"]).hex()


def test_a_reorg_is_recorded_with_its_hashes_and_alerted_at_error(
    reorgable: Setup, caplog: pytest.LogCaptureFixture
):
    chain = reorgable.chain
    tx_hash = chain.deposit(reorgable.alice.address, chain.usdc, 9 * USDC)
    scan_to_head()
    deposit = Deposit.objects.get(tx_hash=tx_hash)
    assert deposit.status == "seen" and deposit.confirmations == 1
    old = {b.number: b.hash for b in ProcessedBlock.objects.all()}
    head = chain.w3.eth.block_number

    caplog.set_level(logging.ERROR, logger="exchange.custody.reorgs")
    reorg(chain, 2)  # the deposit's block and the approval's under it
    results = scan_to_head()

    assert results[0].reorg and results[0].to_block == head - 2
    row = ChainReorg.objects.get()
    assert (row.depth, row.ancestor_number, row.deposits_orphaned) == (2, head - 2, 1)
    assert row.ancestor_hash == old[head - 2]
    assert row.old_hashes == [old[head - 1], old[head]]
    new = ["0x" + bytes(chain.w3.eth.get_block(n)["hash"]).hex() for n in (head - 1, head)]
    assert row.new_hashes == new and set(new).isdisjoint(row.old_hashes)
    assert row.credited_deposits == [] and row.frozen_accounts == []
    deposit.refresh_from_db()
    assert deposit.status == "orphaned"
    # The rewound blocks were replaced by the new chain's.
    assert ProcessedBlock.objects.get(number=head).hash == new[-1]
    alerts = [r for r in caplog.records if "reorg of depth 2" in r.getMessage()]
    assert [r.levelno for r in alerts] == [logging.ERROR]
    assert not Account.objects.filter(withdrawals_frozen=True).exists()


def test_a_reorg_of_blocks_not_scanned_yet_is_recorded_and_counted(
    reorgable: Setup, caplog: pytest.LogCaptureFixture
):
    """The watcher is behind the head (a scan covers at most ``max_blocks``): a reorg of blocks
    it saw the head of but had not scanned changes nothing it recorded, yet it is a reorg."""
    chain = reorgable.chain
    scan_to_head()
    mine(chain, 6)
    first = deposits.chain_scan(max_blocks=2, depth=DEPTH)
    assert not first.caught_up and not first.reorg
    old_head = head_hash(chain)
    before = REGISTRY.get_sample_value("clearway_chain_reorgs_total") or 0.0

    caplog.set_level(logging.ERROR, logger="exchange.custody.reorgs")
    reorg(chain, 2)  # only blocks above the scanned ones
    second = deposits.chain_scan(max_blocks=2, depth=DEPTH)

    assert second.reorg
    row = ChainReorg.objects.get()
    assert (row.depth, row.ancestor_number) == (0, first.to_block)
    assert row.old_hashes == [old_head] and row.new_hashes == [head_hash(chain)]
    assert REGISTRY.get_sample_value("clearway_chain_reorgs_total") == before + 1
    assert any("not scanned yet" in r.getMessage() for r in caplog.records)
    # Recorded once: the scans that catch up afterwards find nothing more.
    scan_to_head()
    assert ChainReorg.objects.count() == 1


def test_a_deep_reorg_never_reverses_a_credited_deposit_it_freezes_the_account(
    reorgable: Setup, caplog: pytest.LogCaptureFixture, admin_client
):
    chain, alice, usdc = reorgable.chain, reorgable.alice, reorgable.market.usdc
    tx_hash = chain.deposit(alice.address, chain.usdc, 40 * USDC)
    mine(chain, DEPTH)
    scan_to_head()
    deposit = Deposit.objects.get(tx_hash=tx_hash)
    assert deposit.status == "credited" and ledger_total(alice, usdc) == 40 * USDC

    caplog.set_level(logging.ERROR, logger="exchange.custody.reorgs")
    reorg(chain, DEPTH + 2)  # deeper than the confirmation depth: the deposit is gone
    assert chain.vault.balance_of(alice.address, chain.usdc) == 0
    scan_to_head()

    deposit.refresh_from_db()
    alice.refresh_from_db()
    assert deposit.status == "reorged" and deposit.journal_entry is not None
    assert alice.withdrawals_frozen
    assert ledger_total(alice, usdc) == 40 * USDC  # not silently reversed
    row = ChainReorg.objects.get()
    assert row.depth == DEPTH + 2 and row.critical and row.resolved_at is None
    assert row.credited_deposits == [
        {"deposit": deposit.pk, "reference": deposit.reference, "account": alice.address,
         "token": chain.usdc, "amount": str(40 * USDC)}
    ]  # fmt: skip
    assert row.frozen_accounts == [alice.address]
    assert any(
        r.levelno == logging.CRITICAL and "CREDITED" in r.getMessage() for r in caplog.records
    )

    AssetWithdrawalLimits.objects.update_or_create(
        asset=usdc, defaults={"auto_approve_threshold": 10**12}
    )
    request = WithdrawalRequest("USDC", 5 * USDC, DESTINATION, "after-reorg")
    with pytest.raises(WithdrawalsFrozen) as refused:
        withdrawal_request(account=alice, request=request)
    assert refused.value.code == "withdrawals_frozen"
    assert not Withdrawal.objects.exists()
    call_command("ledger_check", stdout=open("/dev/null", "w"))  # noqa: SIM115

    # Visible in the admin, where the decision is recorded.
    listing = admin_client.get("/admin/custody/deposit/?status__exact=reorged")
    assert listing.status_code == 200 and deposit.tx_hash in listing.content.decode()
    reorgs = admin_client.get("/admin/custody/chainreorg/?resolved=no")
    assert reorgs.status_code == 200 and alice.address in reorgs.content.decode()
    assert admin_client.get(f"/admin/custody/chainreorg/{row.pk}/change/").status_code == 200
    frozen = admin_client.get("/admin/accounts/account/?withdrawals_frozen__exact=1")
    assert alice.address in frozen.content.decode()
    done = admin_client.post(
        "/admin/accounts/account/",
        {"action": "unfreeze_withdrawals", "_selected_action": [alice.pk]},
    )
    assert done.status_code == 302
    alice.refresh_from_db()
    row.refresh_from_db()
    assert not alice.withdrawals_frozen
    assert row.resolved_at is not None and row.resolved_by.startswith("admin:")
    assert withdrawal_request(account=alice, request=request).created


def test_a_deep_reorg_that_only_moves_a_credited_deposit_freezes_nothing(reorgable: Setup):
    chain, alice, usdc = reorgable.chain, reorgable.alice, reorgable.market.usdc
    tx_hash = chain.deposit(alice.address, chain.usdc, 12 * USDC)
    deposit_raw = raw(chain, tx_hash)
    mine(chain, DEPTH)
    scan_to_head()
    assert Deposit.objects.get().status == "credited"

    # Rewrite the deposit's block and the ones on it; the new chain mines the deposit too.
    reorg(chain, DEPTH + 1, [[deposit_raw, 1]])
    scan_to_head()

    deposit = Deposit.objects.get()
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert deposit.status == "credited"
    assert deposit.block_hash == "0x" + bytes(receipt["blockHash"]).hex()
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert ledger_total(alice, usdc) == chain.vault.balance_of(alice.address, chain.usdc)
    alice.refresh_from_db()
    assert not alice.withdrawals_frozen
    row = ChainReorg.objects.get()
    assert row.depth == DEPTH + 1 and not row.critical


def test_a_reorged_deposit_that_comes_back_is_credited_again_not_twice(reorgable: Setup):
    chain, alice, usdc = reorgable.chain, reorgable.alice, reorgable.market.usdc
    tx_hash = chain.deposit(alice.address, chain.usdc, 12 * USDC)
    deposit_raw = raw(chain, tx_hash)
    mine(chain, DEPTH)
    scan_to_head()

    reorg(chain, DEPTH + 1)  # drops the deposit (the mint and approval under it stay)
    scan_to_head()
    deposit = Deposit.objects.get()
    assert deposit.status == "reorged"
    # The depositor's wallet sends the very same transaction again.
    chain.w3.eth.send_raw_transaction(deposit_raw)
    mine(chain, DEPTH)
    scan_to_head()

    deposit.refresh_from_db()
    assert deposit.status == "credited" and deposit.tx_hash == tx_hash
    assert (
        deposit.block_hash
        == "0x" + bytes(chain.w3.eth.get_transaction_receipt(tx_hash)["blockHash"]).hex()
    )
    assert Deposit.objects.count() == 1
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert ledger_total(alice, usdc) == 12 * USDC
    assert chain.vault.balance_of(alice.address, chain.usdc) == 12 * USDC
    # It left the chain once while credited: the operator still decides about the account.
    alice.refresh_from_db()
    assert alice.withdrawals_frozen
    assert ChainReorg.objects.get().credited_deposits[0]["deposit"] == deposit.pk


def test_an_orphaned_deposit_that_reappears_is_recorded_again_and_credited_once(
    reorgable: Setup,
):
    chain, alice, usdc = reorgable.chain, reorgable.alice, reorgable.market.usdc
    tx_hash = chain.deposit(alice.address, chain.usdc, 3 * USDC)
    deposit_raw = raw(chain, tx_hash)
    scan_to_head()
    assert Deposit.objects.get().status == "seen"

    reorg(chain, 1)  # only the deposit's block
    scan_to_head()
    assert Deposit.objects.get().status == "orphaned"
    chain.w3.eth.send_raw_transaction(deposit_raw)  # the same transaction, mined again
    mine(chain, DEPTH)
    scan_to_head()

    deposit = Deposit.objects.get()
    assert (deposit.tx_hash, deposit.status) == (tx_hash, "credited")
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert ledger_total(alice, usdc) == 3 * USDC
    assert not ChainReorg.objects.get().critical


def test_an_orphaned_deposit_back_in_the_same_block_is_seen_again(reorgable: Setup):
    """The watcher rewound over a block that is canonical again (a reorg there and back):
    the deposit's log comes back with the very same block hash."""
    chain, alice = reorgable.chain, reorgable.alice
    chain.deposit(alice.address, chain.usdc, 2 * USDC)
    scan_to_head()
    deposit = Deposit.objects.get()
    cursor = ProcessedBlock.objects.get(number=deposit.block_number).cursor
    before = ProcessedBlock.objects.get(number=deposit.block_number - 1)
    ProcessedBlock.objects.filter(number__gte=deposit.block_number).delete()
    Deposit.objects.filter(pk=deposit.pk).update(status="orphaned", confirmations=0)
    cursor.block_number, cursor.block_hash = before.number, before.hash
    cursor.save()

    mine(chain, DEPTH)
    scan_to_head()
    deposit.refresh_from_db()
    assert deposit.status == "credited"
    assert JournalEntry.objects.filter(kind="deposit").count() == 1


def test_a_confirmed_batch_that_left_the_chain_is_reopened_and_settled_again(
    reorgable: Setup,
):
    chain, alice, bob, setup = reorgable.chain, reorgable.alice, reorgable.bob, reorgable.market
    chain.deposit(alice.address, chain.usdc, 10_000 * USDC)
    chain.deposit(bob.address, chain.weth, 5 * WETH)
    mine(chain, DEPTH + 3)  # the funding stays below every reorg here
    scan_to_head()
    fill(setup.market, maker=bob, taker=alice, taker_side=Side.BUY, price=3_000 * USDC,
         quantity=WETH // 10)  # fmt: skip
    batch = settlement.batch_cut(max_trades=10)
    submitted = settlement.batch_submit(batch_pk=batch.pk)
    mine(chain, DEPTH)
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=DEPTH + 1)
    scan_to_head()
    old_block = submitted.batch.block_number

    reorg(chain, DEPTH + 2)
    assert chain.vault.next_batch_id() == 1  # the contract forgot the batch
    results = scan_to_head()

    batch.refresh_from_db()
    assert batch.status == "submitted" and batch.reopened_at is not None
    assert results[-1].reopened == ((batch.pk, 1, f"{batch.pk}:{batch.reopened_at.isoformat()}"),)
    assert set(batch.members.values_list("trade__settlement_status", flat=True)) == {"submitted"}
    assert ChainReorg.objects.get().settlements_rechecked == [{"batch": 1, "outcome": "reopened"}]

    # What its new workflow run does: settle it again, then confirm it.
    again = settlement.batch_submit(batch_pk=batch.pk)
    assert not again.already_settled and again.batch.block_number > old_block
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=DEPTH)
    batch.refresh_from_db()
    assert batch.status == "confirmed" and batch.reopened_at is None
    assert chain.vault.next_batch_id() == 2
    assert deposits.chain_scan(max_blocks=500, depth=DEPTH).reopened == ()


def test_a_confirmed_batch_reincluded_elsewhere_only_moves(reorgable: Setup):
    chain, alice, bob, setup = reorgable.chain, reorgable.alice, reorgable.bob, reorgable.market
    chain.deposit(alice.address, chain.usdc, 10_000 * USDC)
    chain.deposit(bob.address, chain.weth, 5 * WETH)
    mine(chain, DEPTH + 3)
    scan_to_head()
    fill(setup.market, maker=bob, taker=alice, taker_side=Side.BUY, price=3_000 * USDC,
         quantity=WETH // 10)  # fmt: skip
    batch = settlement.batch_cut(max_trades=10)
    tx_hash = settlement.batch_submit(batch_pk=batch.pk).batch.tx_hash
    settle_raw = raw(chain, tx_hash)
    mine(chain, DEPTH)
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=DEPTH + 1)
    scan_to_head()

    reorg(chain, DEPTH + 1, [[settle_raw, 1]])
    scan_to_head()

    batch.refresh_from_db()
    assert batch.status == "confirmed" and batch.reopened_at is None
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    assert batch.tx_hash == tx_hash and batch.block_number == receipt["blockNumber"]
    assert batch.block_hash == "0x" + bytes(receipt["blockHash"]).hex()
    assert chain.vault.next_batch_id() == 2
    assert ChainReorg.objects.get().settlements_rechecked == [
        {"batch": 1, "outcome": "re-included", "tx": tx_hash}
    ]


def test_a_confirmed_payout_that_left_the_chain_is_paid_again_once(reorgable: Setup):
    chain, alice, usdc = reorgable.chain, reorgable.alice, reorgable.market.usdc
    chain.deposit(alice.address, chain.usdc, 100 * USDC)
    mine(chain, DEPTH + 3)
    scan_to_head()
    AssetWithdrawalLimits.objects.update_or_create(
        asset=usdc, defaults={"auto_approve_threshold": 10**12}
    )
    withdrawal = withdrawal_request(
        account=alice, request=WithdrawalRequest("USDC", 30 * USDC, DESTINATION, "w1")
    ).withdrawal
    paid = withdrawal_pay(withdrawal_id=withdrawal.id)
    mine(chain, DEPTH)
    withdrawal_complete(withdrawal_id=withdrawal.id, confirmations=DEPTH + 1)
    scan_to_head()
    token = contract_at(chain.w3, "TestToken", chain.usdc)
    assert token.functions.balanceOf(withdrawal.destination).call() == 30 * USDC

    reorg(chain, DEPTH + 2)
    assert not chain.vault.withdrawal_paid(str(withdrawal.id))
    assert token.functions.balanceOf(withdrawal.destination).call() == 0
    scan_to_head()

    withdrawal.refresh_from_db()
    assert withdrawal.state == "confirmed"
    assert chain.vault.withdrawal_paid(str(withdrawal.id))
    assert token.functions.balanceOf(withdrawal.destination).call() == 30 * USDC
    assert chain.vault.balance_of(alice.address, chain.usdc) == 70 * USDC
    assert withdrawal.tx_hash and withdrawal.block_hash != paid.withdrawal.block_hash
    assert withdrawal.transitions.filter(actor="chain-watcher").count() == 1
    # Paid once on this chain: scanning on finds nothing more to do.
    mine(chain, 2)
    scan_to_head()
    assert withdrawal.transitions.filter(actor="chain-watcher").count() == 1
    assert ledger_total(alice, usdc) == 70 * USDC
    call_command("ledger_check", stdout=open("/dev/null", "w"))  # noqa: SIM115
