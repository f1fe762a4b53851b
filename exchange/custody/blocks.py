"""The chain as the watcher has scanned it: its cursor and the hashes it compares blocks by.

Shared by the scan (exchange.custody.deposits), reorg handling (exchange.custody.reorgs) and
settlement (exchange.custody.settlement), which all write hashes as 0x-prefixed hex.
"""

from __future__ import annotations

from web3.exceptions import BlockNotFound

from exchange.custody.chain import ChainClients
from exchange.custody.models import ChainCursor


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _block_hash(chain: ChainClients, number: int) -> str | None:
    try:
        return _hex(chain.w3.eth.get_block(number)["hash"])
    except BlockNotFound:
        return None


def _cursor(chain: ChainClients) -> ChainCursor:
    cursor, _ = ChainCursor.objects.get_or_create(
        vault=chain.config.vault,
        defaults={
            "chain_id": chain.w3.eth.chain_id,
            "block_number": chain.config.from_block - 1,
            "block_hash": "",
        },
    )
    return cursor
