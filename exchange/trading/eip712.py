"""The EIP-712 typed data a trader signs for an order.

The domain binds the chain id and the settlement contract, so a signature is worthless on another
chain or against another deployment. Amounts are signed as integers in base units: the price in
quote base units per whole base unit, the quantity in base-asset base units — the same integers
the engine and the contract see, so what was signed is exactly what is matched and settled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import is_address, to_checksum_address

from exchange.accounts import signatures

DOMAIN_NAME = "Clearway"
DOMAIN_VERSION = "1"

ORDER_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Order": [
        {"name": "account", "type": "address"},
        {"name": "market", "type": "string"},
        {"name": "side", "type": "string"},
        {"name": "orderType", "type": "string"},
        {"name": "price", "type": "uint256"},
        {"name": "quantity", "type": "uint256"},
        {"name": "timeInForce", "type": "string"},
        {"name": "postOnly", "type": "bool"},
        {"name": "selfTradePrevention", "type": "string"},
        {"name": "clientOrderId", "type": "string"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ],
}


# An amend names the order it changes (by the exchange's order id, within its market) and says
# the new price and the new total quantity (filled included, as FIX's OrderQty), 0 meaning
# "unchanged". Its nonce is its own: a replace signature can be used once.
REPLACE_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": ORDER_TYPES["EIP712Domain"],
    "Replace": [
        {"name": "account", "type": "address"},
        {"name": "market", "type": "string"},
        {"name": "orderId", "type": "uint256"},
        {"name": "price", "type": "uint256"},
        {"name": "quantity", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
    ],
}


@dataclass(frozen=True, slots=True)
class SignedReplaceFields:
    """Exactly the signed fields of an amend: base units, 0 for a field left unchanged."""

    account: str
    market: str
    orderId: int
    price: int
    quantity: int
    nonce: int
    expiry: int


@dataclass(frozen=True, slots=True)
class SignedOrderFields:
    """Exactly the signed fields. ``price`` is 0 for market orders; ``expiry`` is unix seconds."""

    account: str
    market: str
    side: str
    orderType: str  # camelCase: EIP-712 field names are part of the signed format
    price: int
    quantity: int
    timeInForce: str
    postOnly: bool
    selfTradePrevention: str
    clientOrderId: str
    nonce: int
    expiry: int


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def typed_data(
    fields: SignedOrderFields | SignedReplaceFields, chain_id: int, verifying_contract: str
) -> dict[str, Any]:
    """The full EIP-712 message, as `eth_signTypedData_v4` and eth_account expect it."""
    replace = isinstance(fields, SignedReplaceFields)
    return {
        "types": REPLACE_TYPES if replace else ORDER_TYPES,
        "primaryType": "Replace" if replace else "Order",
        "domain": domain(chain_id, verifying_contract),
        "message": asdict(fields),
    }


class SignatureInvalid(ValueError):
    """The signature is malformed or recovers to no address."""


def recover_signer(
    fields: SignedOrderFields | SignedReplaceFields,
    signature: str,
    chain_id: int,
    verifying_contract: str,
) -> str:
    """The checksummed address that signed these fields under this domain; a high-s signature
    raises ``SignatureNotCanonical`` (EIP-2), a malformed one ``SignatureInvalid``."""
    try:
        signatures.signature_s(signature)
    except ValueError as exc:
        raise SignatureInvalid(str(exc)) from None
    signatures.ensure_canonical(signature)
    try:
        message = encode_typed_data(full_message=typed_data(fields, chain_id, verifying_contract))
        return signatures.recover_signer(message, signature)
    except Exception as exc:  # eth_keys raises several unrelated types for bad signatures
        raise SignatureInvalid(str(exc)) from exc


def sign(
    fields: SignedOrderFields | SignedReplaceFields,
    private_key: str | bytes,
    chain_id: int,
    verifying_contract: str,
) -> str:
    """Client side (tests, the Python client, the demo market maker)."""
    message = encode_typed_data(full_message=typed_data(fields, chain_id, verifying_contract))
    return "0x" + Account.sign_message(message, private_key).signature.hex().removeprefix("0x")


def checksum(address: str) -> str:
    if not is_address(address):
        raise ValueError(f"not an address: {address!r}")
    return to_checksum_address(address)
