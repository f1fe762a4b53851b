"""GET /api/v1/fills/{trade_id}/proof and GET /api/v1/deposits."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from exchange.accounts.services import token_create, trader_get_or_create
from exchange.custody import deposits, settlement
from exchange.matching import Side
from tests.factories import USDC, WETH

from .support import Chain, MarketSetup, fill

pytestmark = pytest.mark.django_db


def client_for(account) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=account).token}")
    return client


@pytest.fixture
def funded(chain: Chain, custody: MarketSetup, alice, bob) -> MarketSetup:
    chain.deposit(alice.address, chain.usdc, 50_000 * USDC)
    chain.deposit(bob.address, chain.weth, 10 * WETH)
    deposits.chain_scan(max_blocks=500, depth=1)
    return custody


def test_fill_proof_verifies_against_the_on_chain_root(
    funded: MarketSetup, chain: Chain, alice, bob
):
    made = [
        fill(funded.market, maker=bob, taker=alice, taker_side=Side.BUY, price=3_000 * USDC,
             quantity=WETH // 100 * (i + 1))
        for i in range(5)
    ]  # fmt: skip
    batch = settlement.batch_cut(max_trades=10)
    trade = made[3]

    pending = client_for(alice).get(f"/api/v1/fills/{trade.trade_id}/proof")
    assert pending.status_code == 200
    body = pending.json()
    assert body["settlement_status"] == "batched"
    proof = [bytes.fromhex(node[2:]) for node in body["proof"]]
    assert not chain.vault.verify_trade(body["batch_id"], trade.trade_id, proof)  # not on chain

    settlement.batch_submit(batch_pk=batch.pk)
    settlement.batch_mark_confirmed(batch_pk=batch.pk, confirmations=1)
    for who in (alice, bob):  # taker and maker both get it
        body = client_for(who).get(f"/api/v1/fills/{trade.trade_id}/proof").json()
        proof = [bytes.fromhex(node[2:]) for node in body["proof"]]
        assert body["batch_id"] == batch.batch_id
        assert body["root"] == batch.trades_root
        assert body["vault"] == chain.deployment.vault
        assert body["settlement_status"] == "confirmed"
        assert chain.vault.verify_trade(body["batch_id"], trade.trade_id, proof)
        key = bytes.fromhex(body["trade_key"][2:])
        assert chain.vault.contract.functions.verifyTrade(body["batch_id"], key, proof).call()
    # A proof for another trade does not verify this one.
    other = client_for(alice).get(f"/api/v1/fills/{made[0].trade_id}/proof").json()
    wrong = [bytes.fromhex(node[2:]) for node in other["proof"]]
    assert not chain.vault.verify_trade(batch.batch_id, trade.trade_id, wrong)


def test_fill_proof_errors(funded: MarketSetup, chain: Chain, alice, bob):
    trade = fill(funded.market, maker=bob, taker=alice, taker_side=Side.BUY, price=3_000 * USDC,
                 quantity=WETH // 100)  # fmt: skip
    stranger = trader_get_or_create(address=chain.traders[3])

    not_batched = client_for(alice).get(f"/api/v1/fills/{trade.trade_id}/proof")
    assert not_batched.status_code == 409
    assert not_batched.json()["code"] == "trade_not_batched"
    not_mine = client_for(stranger).get(f"/api/v1/fills/{trade.trade_id}/proof")
    assert (not_mine.status_code, not_mine.json()["code"]) == (404, "trade_not_found")
    anonymous = APIClient().get(f"/api/v1/fills/{trade.trade_id}/proof")
    assert anonymous.status_code == 401


def test_deposits_lists_my_deposits_with_confirmations_and_status(
    chain: Chain, custody: MarketSetup, alice, bob
):
    chain.deposit(alice.address, chain.usdc, 1_500_000)  # 1.5 USDC
    chain.deposit(alice.address, chain.weth, WETH // 4)
    chain.deposit(bob.address, chain.usdc, 7 * USDC)
    deposits.chain_scan(max_blocks=500, depth=2)  # the last deposit is only 1 block deep

    response = client_for(alice).get("/api/v1/deposits", {"limit": 1})
    assert response.status_code == 200
    page = response.json()
    assert len(page["results"]) == 1 and page["next"]
    newest = page["results"][0]
    assert (newest["asset"], newest["amount"], newest["status"]) == ("WETH", "0.25", "credited")
    assert newest["confirmations"] >= 2
    rest = client_for(alice).get(page["next"]).json()["results"]
    assert [(d["asset"], d["amount"]) for d in rest] == [("USDC", "1.5")]

    bobs = client_for(bob).get("/api/v1/deposits").json()["results"]
    assert [(d["amount"], d["status"], d["confirmations"]) for d in bobs] == [("7", "seen", 1)]
    assert APIClient().get("/api/v1/deposits").status_code == 401
    bad = client_for(alice).get("/api/v1/deposits", {"cursor": "not-a-cursor"})
    assert (bad.status_code, bad.json()["code"]) == (404, "not_found")  # as documented


def test_a_credited_deposits_confirmations_follow_the_scanned_chain(
    chain: Chain, custody: MarketSetup, alice
):
    tx_hash = chain.deposit(alice.address, chain.usdc, 2 * USDC)
    deposits.chain_scan(max_blocks=500, depth=1)  # credited at 1 confirmation

    def listed() -> dict:
        rows = client_for(alice).get("/api/v1/deposits").json()["results"]
        return next(row for row in rows if row["tx_hash"] == tx_hash)

    assert (listed()["status"], listed()["confirmations"]) == ("credited", 1)
    chain.w3.provider.make_request("anvil_mine", [4])
    deposits.chain_scan(max_blocks=500, depth=1)
    assert (listed()["status"], listed()["confirmations"]) == ("credited", 5)
