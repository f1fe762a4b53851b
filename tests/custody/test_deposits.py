"""Deposits: recorded once per log, credited once, and only at the confirmation depth."""

from __future__ import annotations

import pytest

from exchange.custody import deposits
from exchange.custody.models import ChainCursor, Deposit, ProcessedBlock
from exchange.ledger.models import JournalEntry
from tests.factories import USDC, WETH

from .support import Chain, MarketSetup, ledger_total

pytestmark = pytest.mark.django_db


def mine(chain: Chain, blocks: int = 1) -> None:
    chain.w3.provider.make_request("anvil_mine", [blocks])


def scan(depth: int) -> deposits.ScanResult:
    return deposits.chain_scan(max_blocks=500, depth=depth)


def test_a_deposit_is_credited_once_at_the_confirmation_depth_not_before(
    chain: Chain, custody: MarketSetup, alice
):
    tx_hash = chain.deposit(alice.address, chain.usdc, 250 * USDC)

    first = scan(depth=3)
    deposit = Deposit.objects.get(tx_hash=tx_hash)
    assert (first.deposits_seen, first.deposits_credited) == (1, 0)
    assert (deposit.status, deposit.confirmations, deposit.amount) == ("seen", 1, 250 * USDC)
    assert deposit.account == alice and deposit.asset == custody.usdc
    assert ledger_total(alice, custody.usdc) == 0

    mine(chain)
    scan(depth=3)
    deposit.refresh_from_db()
    assert (deposit.status, deposit.confirmations) == ("seen", 2)
    assert ledger_total(alice, custody.usdc) == 0

    mine(chain)
    third = scan(depth=3)
    deposit.refresh_from_db()
    assert third.deposits_credited == 1
    assert (deposit.status, deposit.confirmations) == ("credited", 3)
    assert deposit.journal_entry.reference == f"{tx_hash}:{deposit.log_index}"
    assert ledger_total(alice, custody.usdc) == 250 * USDC

    # Rescanning (and a scan from scratch, as after a lost cursor) credits nothing again.
    mine(chain, 2)
    scan(depth=3)
    ChainCursor.objects.all().delete()
    again = scan(depth=3)
    assert (again.deposits_seen, again.deposits_credited) == (0, 0)
    assert Deposit.objects.count() == 1
    assert JournalEntry.objects.filter(kind="deposit").count() == 1
    assert ledger_total(alice, custody.usdc) == 250 * USDC


def test_scans_are_bounded_and_keep_block_headers(chain: Chain, custody: MarketSetup, alice, bob):
    chain.deposit(alice.address, chain.weth, 2 * WETH)
    chain.deposit(bob.address, chain.usdc, 7 * USDC)
    mine(chain, 5)
    head = chain.w3.eth.block_number
    start = chain.deployment.deployed_block

    results = []
    while not results or not results[-1].caught_up:
        results.append(deposits.chain_scan(max_blocks=4, depth=1))

    assert all(r.to_block - r.from_block < 4 for r in results)
    assert results[-1].to_block == head
    numbers = sorted(ProcessedBlock.objects.values_list("number", flat=True))
    assert numbers == list(range(start, head + 1))
    blocks = {b.number: b for b in ProcessedBlock.objects.all()}
    for number in numbers[1:]:
        assert blocks[number].parent_hash == blocks[number - 1].hash
    assert ledger_total(alice, custody.weth) == 2 * WETH
    assert ledger_total(bob, custody.usdc) == 7 * USDC


def test_a_deposit_of_an_unlisted_token_is_recorded_but_not_credited(
    chain: Chain, custody: MarketSetup, alice
):
    custody.usdc.token_address = ""
    custody.usdc.save()
    chain.deposit(alice.address, chain.usdc, 5 * USDC)

    scan(depth=1)

    deposit = Deposit.objects.get()
    assert (deposit.status, deposit.asset) == ("seen", None)
    assert not JournalEntry.objects.filter(kind="deposit").exists()


def test_a_reorg_orphans_an_uncredited_deposit(fresh_anvil, settings, db):
    from web3 import Web3

    from exchange.accounts.services import trader_get_or_create
    from exchange.custody.chain import reset_clients

    from .support import configure, deploy_chain, make_market

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url))
    chain = deploy_chain(w3)
    configure(settings, fresh_anvil.rpc_url, chain)
    setup = make_market(chain)
    alice = trader_get_or_create(address=chain.traders[0])
    try:
        chain.deposit(alice.address, chain.usdc, 9 * USDC)
        scan(depth=5)
        deposit = Deposit.objects.get()
        assert deposit.status == "seen"

        # Replace the deposit's block (and the mint and approval before it) with empty ones.
        w3.provider.make_request("anvil_reorg", [3, []])
        result = scan(depth=5)
        assert result.reorg
        while not result.caught_up:
            result = scan(depth=5)
        mine(chain, 5)
        scan(depth=5)

        deposit.refresh_from_db()
        assert deposit.status == "orphaned"
        assert ledger_total(alice, setup.usdc) == 0
        cursor = ChainCursor.objects.get()
        assert cursor.block_hash == "0x" + bytes(w3.eth.get_block("latest")["hash"]).hex()
    finally:
        reset_clients()
