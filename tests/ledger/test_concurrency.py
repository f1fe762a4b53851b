"""Postings from many threads at once, each on its own database connection."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from django.core.management import call_command

from exchange.accounts.models import Account
from exchange.ledger import services
from exchange.ledger.errors import InsufficientFunds
from exchange.ledger.models import JournalEntry
from exchange.ledger.services import Line, NewEntry, post_entries
from exchange.markets.models import Asset
from tests.ledger.support import balance_of
from tests.support import run_together

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(count: int, work: Callable[[int], str]) -> list[str]:
    """Start ``count`` threads together; each returns an outcome label."""
    return run_together([lambda i=i: work(i) for i in range(count)])


def test_concurrent_holds_never_overspend(trader: Account, usdc: Asset) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=1_000, reference="tx")
    threads, amount = 60, 30  # 60 x 30 = 1,800 asked of 1,000: exactly 33 holds fit

    def place(index: int) -> str:
        try:
            services.hold(account=trader, asset=usdc, amount=amount, reference=f"order:{index}")
        except InsufficientFunds:
            return "refused"
        return "held"

    outcomes = run_threads(threads, place)

    assert outcomes.count("held") == 1_000 // amount, outcomes
    assert outcomes.count("refused") == threads - 1_000 // amount, outcomes
    assert balance_of(trader, usdc) == (1_000 % amount, 1_000 - 1_000 % amount)
    assert JournalEntry.objects.filter(kind="hold").count() == 1_000 // amount
    call_command("ledger_check")


def test_concurrent_batches_over_shared_balances_do_not_deadlock(
    make_trader: Callable[[], Account], usdc: Asset, weth: Asset
) -> None:
    traders = [make_trader() for _ in range(6)]
    for trader in traders:
        for asset in (usdc, weth):
            services.credit_deposit(
                account=trader, asset=asset, amount=10**9, reference=f"{trader.pk}:{asset.pk}"
            )

    def trade_batch(index: int) -> str:
        # Each batch touches the same balances, listed in a different random order.
        rng = random.Random(index)
        entries = []
        for n in range(40):
            buyer, seller = rng.sample(traders, 2)
            lines = [
                Line(seller.pk, weth.pk, -1_000),
                Line(buyer.pk, weth.pk, 1_000),
                Line(buyer.pk, usdc.pk, -7),
                Line(seller.pk, usdc.pk, 7),
            ]
            rng.shuffle(lines)
            entries.append(NewEntry(kind="trade", reference=f"t{index}:{n}", lines=lines))
        post_entries(entries)
        return "ok"

    outcomes = run_threads(16, trade_batch)

    assert outcomes == ["ok"] * 16
    assert JournalEntry.objects.filter(kind="trade").count() == 16 * 40
    for asset in (usdc, weth):
        assert sum(sum(balance_of(t, asset)) for t in traders) == 6 * 10**9
    call_command("ledger_check")


def test_concurrent_postings_of_one_reference_apply_once(trader: Account, usdc: Asset) -> None:
    def deposit(index: int) -> str:
        entry = services.credit_deposit(account=trader, asset=usdc, amount=5, reference="tx:1")
        return f"entry {entry.pk}"

    outcomes = run_threads(12, deposit)

    assert len(set(outcomes)) == 1, outcomes
    assert outcomes[0].startswith("entry ")
    assert balance_of(trader, usdc) == (5, 0)
