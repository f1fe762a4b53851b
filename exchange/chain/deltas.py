"""Netted balance changes of a batch, encoded for ClearwayVault.settleBatch.

settleBatch takes ``TokenDeltas[] = (address token, (address account, int256 amount)[])[]``:
one group per token, each summing to zero. Netting first means a batch carries at most one
delta per (account, token), however many trades it holds, which is what keeps gas per trade low.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from eth_typing import ChecksumAddress

from exchange.chain.artifacts import checksum
from exchange.chain.errors import UnbalancedDeltas

INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1

# The ABI value of one TokenDeltas group: (token, [(account, amount), ...]).
TokenGroup = tuple[ChecksumAddress, list[tuple[ChecksumAddress, int]]]


@dataclass(frozen=True, slots=True)
class Delta:
    """A signed change of ``account``'s vault balance of ``token``, in base units."""

    account: str
    token: str
    amount: int

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"amount must be an int of base units, not {self.amount!r}")


def _sort_key(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def net_deltas(changes: Iterable[Delta]) -> list[Delta]:
    """Sum the changes per (account, token), drop zeros, order by token then account.

    The order makes the calldata for a given batch deterministic, so a retried settlement sends
    byte-identical data.
    """
    totals: dict[tuple[ChecksumAddress, ChecksumAddress], int] = defaultdict(int)
    for change in changes:
        totals[(checksum(change.token), checksum(change.account))] += change.amount
    return [
        Delta(account=account, token=token, amount=amount)
        for (token, account), amount in sorted(
            totals.items(), key=lambda item: (_sort_key(item[0][0]), _sort_key(item[0][1]))
        )
        if amount != 0
    ]


def encode_deltas(changes: Iterable[Delta]) -> list[TokenGroup]:
    """Net ``changes`` and group them by token as settleBatch's ``groups`` argument.

    Raises UnbalancedDeltas if a token's deltas do not sum to zero, and ValueError if a netted
    amount does not fit int256, so such a batch never costs gas.
    """
    groups: dict[ChecksumAddress, list[tuple[ChecksumAddress, int]]] = {}
    for delta in net_deltas(changes):
        if not INT256_MIN < delta.amount <= INT256_MAX:
            raise ValueError(f"delta {delta.amount} for {delta.account} does not fit int256")
        groups.setdefault(checksum(delta.token), []).append((checksum(delta.account), delta.amount))
    for token, entries in groups.items():
        total = sum(amount for _, amount in entries)
        if total != 0:
            raise UnbalancedDeltas(token, total)
    return list(groups.items())


def delta_count(groups: Iterable[TokenGroup]) -> int:
    return sum(len(entries) for _, entries in groups)
