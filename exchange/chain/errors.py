"""Chain-side errors, with contract reverts decoded to their Solidity custom error names.

Callers branch on :attr:`ContractRevert.name` (``"BatchOutOfOrder"``, ``"WithdrawalAlreadyPaid"``,
``"EnforcedPause"``, ...) rather than on message text.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

from exchange.chain.artifacts import artifact_names, load_artifact

# Solidity's built-in reverts: require(..., "message") and checked-arithmetic/assert panics.
_BUILTIN = {
    "Error": [{"name": "message", "type": "string"}],
    "Panic": [{"name": "code", "type": "uint256"}],
}


class ChainError(Exception):
    """Base class for every error raised by exchange.chain."""


class ContractRevert(ChainError):
    """A call or transaction reverted; ``name`` and ``params`` are the decoded custom error."""

    def __init__(self, name: str, params: dict[str, Any], data: bytes, tx_hash: str | None = None):
        self.name = name
        self.params = params
        self.data = data
        self.tx_hash = tx_hash
        shown = ", ".join(f"{key}={_show(value)}" for key, value in params.items())
        super().__init__(f"{name}({shown})" + (f" in {tx_hash}" if tx_hash else ""))


class TransactionFailed(ChainError):
    """A mined transaction failed and replaying it did not reproduce a decodable revert."""

    def __init__(self, tx_hash: str):
        self.tx_hash = tx_hash
        super().__init__(f"transaction {tx_hash} failed on chain")


class BatchConflict(ChainError):
    """The batch id is already settled on chain with a different trades root.

    Never retryable: the off-chain batch and the chain disagree about what batch ``batch_id`` is.
    """

    def __init__(self, batch_id: int, onchain_root: bytes, wanted_root: bytes):
        self.batch_id = batch_id
        self.onchain_root = onchain_root
        self.wanted_root = wanted_root
        super().__init__(
            f"batch {batch_id} is settled on chain with root 0x{onchain_root.hex()}, "
            f"not 0x{wanted_root.hex()}"
        )


class PayoutConflict(ChainError):
    """The withdrawal id was already paid, but to a different account, token, amount or address."""


class UnbalancedDeltas(ChainError, ValueError):
    """Deltas of one token do not sum to zero; caught before any gas is spent."""

    def __init__(self, token: str, total: int):
        self.token = token
        self.total = total
        super().__init__(f"deltas of token {token} sum to {total}, not 0")


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


@cache
def _errors_by_selector() -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    entries: list[tuple[str, list[dict[str, Any]]]] = list(_BUILTIN.items())
    for name in artifact_names():
        entries += [
            (item["name"], item["inputs"])
            for item in load_artifact(name).abi
            if item["type"] == "error"
        ]
    table = {}
    for name, inputs in entries:
        signature = f"{name}({','.join(arg['type'] for arg in inputs)})"
        table[function_signature_to_4byte_selector(signature)] = (name, inputs)
    return table


def decode_revert(data: bytes | str | None) -> tuple[str, dict[str, Any]]:
    """Name and arguments of the error in revert ``data``; ``("unknown", {})`` when unknown."""
    raw = bytes(HexBytes(data)) if data else b""
    known = _errors_by_selector().get(raw[:4])
    if known is None:
        return ("unknown", {"data": "0x" + raw.hex()} if raw else {})
    name, inputs = known
    values = decode([arg["type"] for arg in inputs], raw[4:])
    params: dict[str, Any] = {}
    for i, (arg, value) in enumerate(zip(inputs, values, strict=True)):
        is_address = arg["type"] == "address"
        params[arg["name"] or f"arg{i}"] = to_checksum_address(value) if is_address else value
    return name, params


def revert_from_web3(exc: Exception, tx_hash: str | None = None) -> ContractRevert:
    """Translate web3's ContractLogicError family (which carries the raw revert data)."""
    data = getattr(exc, "data", None)
    raw = bytes(HexBytes(data)) if isinstance(data, str | bytes) and data else b""
    name, params = decode_revert(raw)
    if name == "unknown" and not raw:
        params = {"message": str(exc)}
    return ContractRevert(name, params, raw, tx_hash)
