"""Sending transactions: a transaction stuck in the mempool is replaced (same nonce, higher
fees) and whichever version is mined, the call runs once. On a private anvil chain with
automining off, so the test decides when blocks come."""

from __future__ import annotations

import threading

import pytest
from web3 import Web3

from exchange.chain import deploy_stack
from exchange.chain.artifacts import contract_at
from exchange.chain.tx import TxResult, send
from tests.contracts.support import TOKENS
from tests.waiting import wait_for


def pooled(w3: Web3, sender: str) -> dict:
    """The sender's transactions waiting in anvil's mempool, by nonce."""
    pending = w3.provider.make_request("txpool_content", [])["result"]["pending"]
    by_sender = {address.lower(): txs for address, txs in pending.items()}
    return by_sender.get(sender.lower(), {})


def test_a_stuck_transaction_is_replaced_with_higher_fees_and_runs_once(fresh_anvil) -> None:
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url, request_kwargs={"timeout": 10}))
    admin, operator, fee, alice = w3.eth.accounts[:4]
    deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee, tokens=TOKENS)
    token = contract_at(w3, "TestToken", deployment.tokens["USDC"])
    nonce = w3.eth.get_transaction_count(alice)
    w3.provider.make_request("evm_setAutomine", [False])

    outcome: list[TxResult | BaseException] = []

    def sender() -> None:
        try:
            call = token.functions.mint(alice, 5)
            outcome.append(send(w3, call, sender=alice, timeout=60, stuck_after=0.5))
        except BaseException as error:  # reported by the assertions below
            outcome.append(error)

    thread = threading.Thread(target=sender)
    thread.start()
    wait_for(lambda: str(nonce) in pooled(w3, alice), "the first transaction in the mempool")
    first = pooled(w3, alice)[str(nonce)]
    # Nothing is mined: after stuck_after the same nonce comes back paying more.
    wait_for(lambda: pooled(w3, alice)[str(nonce)]["hash"] != first["hash"], "a replacement")
    replacement = pooled(w3, alice)[str(nonce)]
    w3.provider.make_request("evm_mine", [])
    thread.join(timeout=60)

    assert len(outcome) == 1 and isinstance(outcome[0], TxResult), outcome
    assert int(replacement["maxFeePerGas"], 16) > int(first["maxFeePerGas"], 16)
    assert int(replacement["maxPriorityFeePerGas"], 16) > int(first["maxPriorityFeePerGas"], 16)
    mined = outcome[0].tx_hash
    assert mined != first["hash"]
    assert w3.eth.get_transaction(mined)["nonce"] == nonce
    assert w3.eth.get_transaction_count(alice) == nonce + 1
    assert token.functions.balanceOf(alice).call() == 5  # minted once


def test_no_receipt_within_the_timeout_raises_and_nothing_runs_twice(fresh_anvil) -> None:
    from web3.exceptions import TimeExhausted

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url, request_kwargs={"timeout": 10}))
    admin, operator, fee, alice = w3.eth.accounts[:4]
    deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee, tokens=TOKENS)
    token = contract_at(w3, "TestToken", deployment.tokens["USDC"])
    w3.provider.make_request("evm_setAutomine", [False])

    with pytest.raises(TimeExhausted):
        send(w3, token.functions.mint(alice, 7), sender=alice, timeout=1.5, stuck_after=0.3)

    # The versions left in the mempool share one nonce: mining them applies the call once.
    w3.provider.make_request("evm_mine", [])
    assert token.functions.balanceOf(alice).call() == 7
