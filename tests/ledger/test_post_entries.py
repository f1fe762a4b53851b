"""post_entries (one transaction, aggregated statements) behaves exactly like post_entry called
once per entry, in order, except that a refusal applies none of the batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from exchange.accounts.models import SYSTEM_DEPOSITS, SYSTEM_FEES, Account
from exchange.accounts.services import system_account
from exchange.errors import ApplicationError
from exchange.ledger.models import Balance, Bucket, JournalLine
from exchange.ledger.services import Line, NewEntry, post_entries, post_entry
from exchange.markets.models import Asset

pytestmark = pytest.mark.django_db

TRADERS = 3
A, H = Bucket.AVAILABLE, Bucket.HELD


@dataclass(frozen=True)
class World:
    traders: list[int]
    fees: int
    deposits: int
    assets: list[int]


@pytest.fixture
def world(make_trader: Callable[[], Account], usdc: Asset, weth: Asset) -> World:
    return World(
        traders=[make_trader().pk for _ in range(TRADERS)],
        fees=system_account(SYSTEM_FEES).pk,
        deposits=system_account(SYSTEM_DEPOSITS).pk,
        assets=[usdc.pk, weth.pk],
    )


amounts = st.integers(min_value=1, max_value=200)

operation = st.one_of(
    st.tuples(st.just("deposit"), st.integers(0, TRADERS - 1), st.integers(0, 1), amounts),
    st.tuples(st.just("hold"), st.integers(0, TRADERS - 1), st.integers(0, 1), amounts),
    st.tuples(st.just("release"), st.integers(0, TRADERS - 1), st.integers(0, 1), amounts),
    st.tuples(
        st.just("trade"),
        st.integers(0, TRADERS - 1),  # buyer
        st.integers(0, TRADERS - 1),  # seller
        amounts,  # base quantity
        amounts,  # quote notional
        st.integers(0, 5),  # fee, in quote, paid by the seller
    ),
)


def build(world: World, op: tuple, reference: str) -> NewEntry:
    t, assets = world.traders, world.assets
    match op:
        case ("deposit", who, asset, amount):
            lines = [
                Line(world.deposits, assets[asset], -amount),
                Line(t[who], assets[asset], amount),
            ]
        case ("hold", who, asset, amount):
            lines = [
                Line(t[who], assets[asset], -amount, A),
                Line(t[who], assets[asset], amount, H),
            ]
        case ("release", who, asset, amount):
            lines = [
                Line(t[who], assets[asset], -amount, H),
                Line(t[who], assets[asset], amount, A),
            ]
        case ("trade", buyer, seller, quantity, notional, fee):
            base, quote = assets[1], assets[0]
            lines = [
                Line(t[seller], base, -quantity, H),
                Line(t[buyer], base, quantity, A),
                Line(t[buyer], quote, -notional, H),
                Line(t[seller], quote, notional - fee, A),
            ]
            if fee:
                lines.append(Line(world.fees, quote, fee, A))
        case _:
            raise AssertionError(op)
    return NewEntry(kind=op[0], reference=reference, lines=lines)


def snapshot() -> tuple[dict, list]:
    balances = {
        (b.account_id, b.asset_id): (b.available, b.held)
        for b in Balance.objects.all()
        if b.available or b.held
    }
    lines = list(
        JournalLine.objects.order_by("id").values_list(
            "entry__kind", "entry__reference", "account_id", "asset_id", "bucket", "amount"
        )
    )
    return balances, lines


def in_rolled_back_savepoint(work: Callable[[], object]) -> tuple[object, tuple[dict, list]]:
    with transaction.atomic():
        outcome = work()
        state = snapshot()
        transaction.set_rollback(True)
    return outcome, state


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    funding=st.lists(st.integers(0, 2_000), min_size=2 * TRADERS, max_size=2 * TRADERS),
    ops=st.lists(st.tuples(operation, st.integers(0, 7)), min_size=1, max_size=10),
)
def test_post_entries_equals_post_entry_one_by_one(world: World, funding: list, ops: list) -> None:
    setup = []
    for i, amount in enumerate(funding):
        who, asset = divmod(i, len(world.assets))
        if amount:
            setup.append(build(world, ("deposit", who, asset, amount), f"fund:{i}"))
        if amount > 1:
            setup.append(build(world, ("hold", who, asset, amount // 2), f"fund:{i}"))
    # Mostly fresh references; sometimes one of two shared ones, to replay or conflict.
    entries = [
        build(world, op, str(shared) if shared < 2 else f"u{index}")
        for index, (op, shared) in enumerate(ops)
    ]

    def one_by_one() -> list[type[ApplicationError]]:
        post_entries(setup)
        refused = []
        for entry in entries:
            try:
                post_entry(kind=entry.kind, reference=entry.reference, lines=entry.lines)
            except ApplicationError as exc:
                refused.append(type(exc))
        return refused

    def batched() -> type[ApplicationError] | None:
        post_entries(setup)
        before = snapshot()
        try:
            post_entries(entries)
        except ApplicationError as exc:
            assert snapshot() == before  # a refused batch changes nothing
            return type(exc)
        return None

    refused, sequential_state = in_rolled_back_savepoint(one_by_one)
    batch_error, batch_state = in_rolled_back_savepoint(batched)

    event("some entry refused" if refused else "all entries applied")
    if refused:
        # The batch refuses as a whole. Its reason may differ: it spots an in-batch reference
        # conflict before replaying funds, where one by one an earlier refusal hides it.
        assert batch_error is not None
    else:
        assert batch_error is None
        assert batch_state == sequential_state
