"""The one place a wallet signature becomes a signer: shape and EIP-2 canonical-form checks.

secp256k1 signatures are malleable: (r, s, v) and (r, n - s, v ^ 1) both verify. EIP-2 (and
OpenZeppelin's ECDSA, and every wallet) produce only the low-s form, so a high-s twin is never
something a wallet signed: it is someone rewriting a signature. Refusing it keeps "one signed
message, one signature" true for everything that stores or compares signatures (orders, sign-in).
"""

from __future__ import annotations

import re

from eth_account import Account as EthAccount
from eth_account.messages import SignableMessage
from eth_utils import to_checksum_address

from exchange.accounts.errors import SignatureNotCanonical

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


def signature_s(signature: str) -> int:
    """The ``s`` of a 65-byte 0x-hex signature (r || s || v)."""
    if not isinstance(signature, str) or _SIGNATURE.match(signature) is None:
        raise ValueError("a signature is 65 bytes, 0x-prefixed hex")
    return int(signature[66:130], 16)


def ensure_canonical(signature: str) -> None:
    """Refuse a high-s signature (s > n/2), EIP-2's rule; malformed input raises ValueError."""
    if signature_s(signature) > HALF_N:
        raise SignatureNotCanonical(
            "The signature's s value is in the upper half of the curve order (EIP-2): "
            "sign again with a standard wallet.",
        )


def recover_signer(message: SignableMessage, signature: str) -> str:
    """The checksummed address that signed ``message``, refusing high-s signatures first.

    Errors of the recovery itself (bad v, r or s out of range) propagate as eth_keys/eth_utils
    raise them; callers map them to their own "bad signature" code.
    """
    ensure_canonical(signature)
    return to_checksum_address(EthAccount.recover_message(message, signature=signature))


def high_s_twin(signature: str) -> str:
    """The other valid signature of the same message (r, n - s, v flipped): for tests and for
    explaining the attack; nothing in production calls it."""
    r, s, v = signature[2:66], int(signature[66:130], 16), int(signature[130:132], 16)
    flipped = {27: 28, 28: 27, 0: 1, 1: 0}[v]
    return f"0x{r}{SECP256K1_N - s:064x}{flipped:02x}"
