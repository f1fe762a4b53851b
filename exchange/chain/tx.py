"""Connecting to the chain and sending contract transactions with decoded reverts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.middleware import SignAndSendRawMiddlewareBuilder

from exchange.chain.artifacts import checksum
from exchange.chain.errors import TransactionFailed, revert_from_web3

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


def send(
    w3: Web3,
    call: ContractFunction,
    *,
    sender: str,
    timeout: float = RECEIPT_TIMEOUT,
    gas: int | None = None,
) -> TxResult:
    """Send ``call`` from ``sender``, wait for its receipt, and raise ContractRevert on a revert.

    Most reverts surface during gas estimation, before anything is sent. A transaction that was
    mined and failed anyway (the state moved between estimate and inclusion) is replayed as a call
    on its block's state to name the error; that replay is best effort.
    """
    params: dict[str, Any] = {"from": checksum(sender)}
    if gas is not None:
        params["gas"] = gas
    try:
        tx_hash = call.transact(params)  # type: ignore[arg-type]
    except ContractLogicError as exc:
        raise revert_from_web3(exc) from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    result = tx_result(receipt)
    if receipt["status"] != 1:
        try:
            call.call({"from": checksum(sender)}, block_identifier=result.block_number)
        except ContractLogicError as exc:
            raise revert_from_web3(exc, tx_hash=result.tx_hash) from exc
        raise TransactionFailed(result.tx_hash)
    return result
