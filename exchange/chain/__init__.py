"""The on-chain side of Clearway: ClearwayVault deployment, settlement and payouts over web3.

Pure web3, no Django, so scripts, workers and Temporal activities can all import it. Money is
integers in base units throughout. The usual entry points:

    deployment = ensure_deployment(w3, path, admin=..., operator=..., fee_account=...)
    vault = deployment.vault_client(w3)
    tree = TradeTree(trade_ids)
    vault.settle_batch(batch_id, tree.root, deltas, sender=operator)
    vault.payout(withdrawal_id, account=..., token=..., amount=..., to=..., sender=operator)
"""

from __future__ import annotations

from exchange.chain.artifacts import Artifact, load_artifact
from exchange.chain.deltas import Delta, encode_deltas, net_deltas
from exchange.chain.deploy import (
    DEFAULT_TOKENS,
    Deployment,
    TokenSpec,
    deploy_stack,
    ensure_deployment,
    ensure_local_deployment,
    mint_test_tokens,
)
from exchange.chain.errors import (
    BatchConflict,
    ChainError,
    ContractRevert,
    PayoutConflict,
    TransactionFailed,
    UnbalancedDeltas,
    decode_revert,
)
from exchange.chain.ids import id_key
from exchange.chain.merkle import TradeTree, trade_key, trade_leaf, verify_proof
from exchange.chain.tx import TxResult, connect, send
from exchange.chain.vault import DepositLog, Payout, Settlement, Vault, withdrawal_key

__all__ = [
    "DEFAULT_TOKENS",
    "Artifact",
    "BatchConflict",
    "ChainError",
    "ContractRevert",
    "Delta",
    "Deployment",
    "DepositLog",
    "Payout",
    "PayoutConflict",
    "Settlement",
    "TokenSpec",
    "TradeTree",
    "TransactionFailed",
    "TxResult",
    "UnbalancedDeltas",
    "Vault",
    "connect",
    "decode_revert",
    "deploy_stack",
    "encode_deltas",
    "ensure_deployment",
    "ensure_local_deployment",
    "id_key",
    "load_artifact",
    "mint_test_tokens",
    "net_deltas",
    "send",
    "trade_key",
    "trade_leaf",
    "verify_proof",
    "withdrawal_key",
]
