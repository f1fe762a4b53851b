"""Connecting to the chain and sending contract transactions with decoded reverts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder

from exchange.chain.artifacts import checksum
from exchange.chain.errors import TransactionFailed, revert_from_web3

log = logging.getLogger(__name__)

RECEIPT_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int


def connect(rpc_url: str, *, accounts: Sequence[LocalAccount] = (), timeout: float = 10.0) -> Web3:
    """A Web3 on ``rpc_url`` that signs locally for ``accounts`` (e.g. the operator key).

    Transactions from any other address go to the node as eth_sendTransaction, which only a dev
    node with unlocked accounts (anvil) accepts.
    """
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if accounts:
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(list(accounts)), layer=0)
    return w3


def tx_result(receipt: Any) -> TxResult:
    return TxResult(
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
        block_number=int(receipt["blockNumber"]),
        block_hash="0x" + bytes(receipt["blockHash"]).hex(),
        gas_used=int(receipt["gasUsed"]),
    )


# A transaction not mined after this long is re-broadcast with the same nonce and higher fees
# (nodes accept a replacement that pays at least 10% more; we bid 25% more each time).
STUCK_AFTER = 20.0
FEE_BUMP_PERCENT = 25
MAX_REPLACEMENTS = 6

# One sender's transactions get their nonces one at a time in this process: two activities
# sending from the operator account at once must not take the same pending nonce.
_nonce_locks: dict[str, threading.Lock] = {}
_nonce_locks_guard = threading.Lock()


def _nonce_lock(sender: str) -> threading.Lock:
    with _nonce_locks_guard:
        return _nonce_locks.setdefault(sender, threading.Lock())


def _fees(w3: Web3) -> tuple[int, int]:
    """(max fee, priority fee) per gas for the next block: twice its base fee plus the tip,
    so the transaction stays includable while the base fee rises for a few blocks."""
    tip = int(w3.eth.max_priority_fee)
    base = int(w3.eth.get_block("pending").get("baseFeePerGas", 0))
    return 2 * base + tip, tip


def _bumped(fee: int) -> int:
    return fee * (100 + FEE_BUMP_PERCENT) // 100 + 1


def send(
    w3: Web3,
    call: ContractFunction,
    *,
    sender: str,
    timeout: float = RECEIPT_TIMEOUT,
    gas: int | None = None,
    stuck_after: float = STUCK_AFTER,
) -> TxResult:
    """Send ``call`` from ``sender``, wait for its receipt, and raise ContractRevert on a revert.

    The nonce is pinned when the transaction is first sent. While it is not mined, every
    ``stuck_after`` seconds the same nonce is sent again with fees raised by
    FEE_BUMP_PERCENT: whichever version gets mined, the call runs at most once. A receipt of
    none of them within ``timeout`` raises web3's TimeExhausted (the caller retries; the
    contract's batch and withdrawal ids keep a late one from applying twice).

    Most reverts surface during gas estimation, before anything is sent. A transaction that was
    mined and failed anyway (the state moved between estimate and inclusion) is replayed as a call
    on its block's state to name the error; that replay is best effort.
    """
    sender = checksum(sender)
    deadline = time.monotonic() + timeout
    try:
        # Estimated once: a replacement must not be re-estimated against a state in which an
        # earlier version already ran (it would revert in estimation).
        gas = gas if gas is not None else call.estimate_gas({"from": sender})
        with _nonce_lock(sender):
            max_fee, tip = _fees(w3)
            params: dict[str, Any] = {
                "from": sender,
                "gas": gas,
                "nonce": w3.eth.get_transaction_count(sender, "pending"),
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
            sent = [call.transact(params)]  # type: ignore[arg-type]
    except ContractLogicError as exc:
        raise revert_from_web3(exc) from exc
    receipt = _wait_or_replace(w3, call, params, sent, deadline, stuck_after)
    result = tx_result(receipt)
    if receipt["status"] != 1:
        try:
            call.call({"from": sender}, block_identifier=result.block_number)
        except ContractLogicError as exc:
            raise revert_from_web3(exc, tx_hash=result.tx_hash) from exc
        raise TransactionFailed(result.tx_hash)
    return result


def _wait_or_replace(
    w3: Web3,
    call: ContractFunction,
    params: dict[str, Any],
    sent: list[Any],
    deadline: float,
    stuck_after: float,
) -> Any:
    """The receipt of whichever of ``sent`` (one nonce, rising fees) is mined first."""
    next_bump = time.monotonic() + stuck_after
    while True:
        for tx_hash in reversed(sent):
            try:
                return w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                continue
        now = time.monotonic()
        if now >= deadline:
            raise TimeExhausted(f"none of {len(sent)} transaction(s) mined: {sent[-1].hex()}")
        if now >= next_bump and len(sent) <= MAX_REPLACEMENTS:
            next_bump = now + stuck_after
            params = params | {
                "maxFeePerGas": _bumped(params["maxFeePerGas"]),
                "maxPriorityFeePerGas": _bumped(params["maxPriorityFeePerGas"]),
            }
            try:
                sent.append(call.transact(params))  # type: ignore[arg-type]
                log.warning(
                    "transaction %s not mined after %.0fs: replaced by %s (nonce %d, max fee %d)",
                    sent[-2].hex(), stuck_after, sent[-1].hex(), params["nonce"],
                    params["maxFeePerGas"],
                )  # fmt: skip
            except (ValueError, Web3RPCError, ContractLogicError) as exc:
                # "nonce too low": an earlier version was mined meanwhile (its receipt is
                # found next round); "underpriced": the node wants more, next bump offers it.
                log.warning("replacing transaction %s failed: %s", sent[-1].hex(), exc)
        time.sleep(0.1)
