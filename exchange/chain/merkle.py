"""Merkle trees of a batch's trade ids, built exactly as ClearwayVault.verifyTrade checks them.

From trade id to leaf:

1. ``key  = keccak256(utf8(str(trade_id)))``: the ``bytes32 tradeId`` a trader passes to
   ``verifyTrade(batchId, tradeId, proof)`` (see :func:`exchange.chain.ids.id_key`).
2. ``leaf = keccak256(keccak256(abi.encode(key)))``: double-hashed as OpenZeppelin recommends,
   so an inner node (a 64-byte preimage) can never pass for a leaf.

Inner nodes are ``keccak256(min(a, b) ++ max(a, b))`` (OpenZeppelin MerkleProof's sorted pairs), so
proofs carry no left/right flags. The layout follows OpenZeppelin's StandardMerkleTree for a
``["bytes32"]`` leaf encoding (leaves sorted, complete binary tree stored as an array), so its
JavaScript library computes the same root for the same trade ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eth_utils import keccak

from exchange.chain.ids import OffchainId, id_key


def trade_key(trade_id: OffchainId) -> bytes:
    return id_key(trade_id)


def trade_leaf(trade_id: OffchainId) -> bytes:
    return keccak(keccak(trade_key(trade_id)))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def verify_proof(trade_id: OffchainId, proof: Iterable[bytes], root: bytes) -> bool:
    """The same check as the contract's, for callers that want an answer without an RPC."""
    node = trade_leaf(trade_id)
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


class TradeTree:
    """Root and inclusion proofs for the trade ids of one batch (at least one, no duplicates)."""

    __slots__ = ("_index", "_nodes")

    def __init__(self, trade_ids: Sequence[OffchainId]):
        if not trade_ids:
            raise ValueError("a batch needs at least one trade id")
        leaves: dict[bytes, OffchainId] = {}
        for trade_id in trade_ids:
            leaf = trade_leaf(trade_id)
            if leaf in leaves:
                raise ValueError(f"duplicate trade id {trade_id!r} in batch")
            leaves[leaf] = trade_id
        ordered = sorted(leaves)
        count = len(ordered)
        # The array form of a complete binary tree: node i has children 2i+1 and 2i+2, and the
        # leaves fill the tail in reverse, as StandardMerkleTree lays them out.
        nodes: list[bytes] = [b""] * (2 * count - 1)
        self._index: dict[bytes, int] = {}
        for i, leaf in enumerate(ordered):
            position = len(nodes) - 1 - i
            nodes[position] = leaf
            self._index[leaf] = position
        for i in range(len(nodes) - 1 - count, -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        self._nodes = nodes

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, trade_id: object) -> bool:
        try:
            return trade_leaf(trade_id) in self._index  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def proof(self, trade_id: OffchainId) -> list[bytes]:
        """Sibling hashes from the trade's leaf up to (not including) the root."""
        try:
            position = self._index[trade_leaf(trade_id)]
        except KeyError:
            raise KeyError(f"trade id {trade_id!r} is not in this batch") from None
        proof = []
        while position > 0:
            sibling = position + 1 if position % 2 else position - 1
            proof.append(self._nodes[sibling])
            position = (position - 1) // 2
        return proof
