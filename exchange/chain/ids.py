"""How off-chain ids (trade ids, withdrawal ids) become the bytes32 keys the contract sees."""

from __future__ import annotations

from uuid import UUID

from eth_utils import keccak

OffchainId = str | int | UUID | bytes


def id_key(value: OffchainId) -> bytes:
    """keccak256 of the UTF-8 text of an off-chain id.

    Integers use their decimal text and UUIDs their canonical lower-case hyphenated text, so
    ``id_key(7) == id_key("7")``. A 32-byte ``bytes`` value is taken as an already derived key.
    """
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError(f"a bytes key must be 32 bytes, got {len(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | UUID):
        raise TypeError(f"an id must be str, int or UUID, not {type(value).__name__}")
    return keccak(text=str(value))
