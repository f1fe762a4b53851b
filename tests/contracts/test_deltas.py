"""Netting and encoding deltas for settleBatch (pure, no chain)."""

from __future__ import annotations

import pytest

from exchange.chain import Delta, UnbalancedDeltas, encode_deltas, net_deltas

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
FEE = "0x" + "0f" * 20
T1 = "0x" + "01" * 20
T2 = "0x" + "02" * 20


def test_changes_net_per_account_and_token_in_token_then_account_order():
    changes = [
        Delta(B, T2, 5),
        Delta(A, T1, -10),
        Delta(B, T1, 10),
        Delta(A, T2, -5),
        Delta(A, T1, 10),  # nets A's T1 to zero: dropped
        Delta(B, T1, -10),
    ]
    netted = net_deltas(changes)
    assert [(d.token[-2:], d.account[-2:].lower(), d.amount) for d in netted] == [
        ("02", "aa", -5),
        ("02", "bb", 5),
    ]


def test_encoding_groups_by_token_with_checksum_addresses():
    groups = encode_deltas(
        [Delta(A, T1, -7), Delta(B, T1, 6), Delta(FEE, T1, 1), Delta(A, T2, 3), Delta(B, T2, -3)]
    )
    assert [token.lower() for token, _ in groups] == [T1, T2]
    assert [(acct.lower(), amount) for acct, amount in groups[0][1]] == [
        (FEE, 1),
        (A, -7),
        (B, 6),
    ]
    assert all(acct != acct.lower() for _, entries in groups for acct, _ in entries)


def test_unbalanced_or_non_integer_amounts_are_refused():
    with pytest.raises(UnbalancedDeltas) as caught:
        encode_deltas([Delta(A, T1, -7), Delta(B, T1, 6)])
    assert caught.value.total == -1
    with pytest.raises(TypeError):
        Delta(A, T1, 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Delta(A, T1, True)
    with pytest.raises(ValueError, match="int256"):
        encode_deltas([Delta(A, T1, -(2**255)), Delta(B, T1, 2**255)])
