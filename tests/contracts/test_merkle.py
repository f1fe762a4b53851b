"""The Python Merkle helper on its own (the on-chain check is in test_vault.py)."""

from __future__ import annotations

import uuid

import pytest
from eth_utils import keccak

from exchange.chain import TradeTree, trade_key, trade_leaf, verify_proof
from exchange.chain.merkle import hash_pair


def test_a_trade_id_becomes_a_double_hashed_leaf_of_its_utf8_keccak():
    assert trade_key("trade-1") == keccak(b"trade-1")
    assert trade_leaf("trade-1") == keccak(keccak(keccak(b"trade-1")))
    assert trade_key(17) == trade_key("17")
    some = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert trade_key(some) == keccak(text=str(some))
    with pytest.raises(TypeError):
        trade_key(True)


def test_a_single_trade_is_its_own_root_with_an_empty_proof():
    tree = TradeTree(["only"])
    assert tree.root == trade_leaf("only")
    assert tree.proof("only") == []


def test_two_trades_hash_as_a_sorted_pair_whichever_order_they_come_in():
    a, b = trade_leaf("a"), trade_leaf("b")
    expected = keccak(min(a, b) + max(a, b))
    assert TradeTree(["a", "b"]).root == TradeTree(["b", "a"]).root == expected == hash_pair(b, a)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 16, 17, 100])
def test_every_proof_verifies_against_the_root_and_no_other_trade_does(size: int):
    trade_ids = [f"t-{i}" for i in range(size)]
    tree = TradeTree(trade_ids)
    for trade_id in trade_ids:
        assert verify_proof(trade_id, tree.proof(trade_id), tree.root)
        assert not verify_proof("not-in-batch", tree.proof(trade_id), tree.root)
    assert len(tree) == size
    assert "t-0" in tree and "t-x" not in tree


def test_an_empty_batch_or_a_duplicate_trade_id_is_rejected():
    with pytest.raises(ValueError):
        TradeTree([])
    with pytest.raises(ValueError, match="duplicate"):
        TradeTree(["a", "b", "a"])
    with pytest.raises(KeyError):
        TradeTree(["a"]).proof("b")
