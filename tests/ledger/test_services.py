from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import IntegrityError, connection, transaction

from exchange import pgbulk
from exchange.accounts.models import SYSTEM_DEPOSITS, SYSTEM_FEES, SYSTEM_WITHDRAWALS, Account
from exchange.accounts.services import system_account
from exchange.ledger import services
from exchange.ledger.errors import (
    InsufficientFunds,
    InvalidEntry,
    ReferenceConflict,
    UnbalancedEntry,
)
from exchange.ledger.models import Balance, Bucket, JournalEntry, JournalLine
from exchange.ledger.services import Line, NewEntry, post_entries, post_entry
from exchange.markets.models import Asset
from tests.ledger.support import balance_of

pytestmark = pytest.mark.django_db

AVAILABLE, HELD = Bucket.AVAILABLE, Bucket.HELD


def test_deposit_hold_release_and_withdrawal_move_the_right_buckets(
    trader: Account, usdc: Asset
) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=1_000, reference="tx1:0")
    assert balance_of(trader, usdc) == (1_000, 0)
    assert balance_of(system_account(SYSTEM_DEPOSITS), usdc) == (-1_000, 0)

    services.hold(account=trader, asset=usdc, amount=400, reference="order:1")
    assert balance_of(trader, usdc) == (600, 400)
    services.release(account=trader, asset=usdc, amount=100, reference="order:1:cancel")
    assert balance_of(trader, usdc) == (700, 300)
    services.pay_withdrawal(account=trader, asset=usdc, amount=300, reference="withdrawal:1")
    assert balance_of(trader, usdc) == (700, 0)
    assert balance_of(system_account(SYSTEM_WITHDRAWALS), usdc) == (300, 0)
    assert JournalEntry.objects.count() == 4


def test_amounts_wider_than_bigint_are_exact(trader: Account, weth: Asset) -> None:
    amount = 10**30 + 1  # a trillion WETH and one wei: far beyond bigint's 9.2e18
    services.credit_deposit(account=trader, asset=weth, amount=amount, reference="big")
    services.hold(account=trader, asset=weth, amount=amount - 1, reference="order:big")
    assert balance_of(trader, weth) == (1, amount - 1)
    assert JournalLine.objects.filter(account=trader).order_by("id")[0].amount == amount


def test_lines_must_sum_to_zero_per_asset(
    trader: Account, usdc: Asset, weth: Asset, deposits: Account
) -> None:
    lines = [
        Line(deposits.pk, usdc.pk, -10),
        Line(trader.pk, usdc.pk, 5),
        Line(trader.pk, weth.pk, 5),  # balances in total, but not per asset
    ]
    with pytest.raises(UnbalancedEntry) as error:
        post_entry(kind="deposit", reference="x", lines=lines)
    assert error.value.code == "ledger_unbalanced"
    assert set(error.value.extra["sums"]) == {str(usdc.pk), str(weth.pk)}
    assert not JournalEntry.objects.exists()
    assert not Balance.objects.exists()


@pytest.mark.parametrize(
    ("kind", "reference", "amount", "bucket"),
    [
        ("gift", "r", 5, AVAILABLE),  # unknown kind
        ("deposit", "", 5, AVAILABLE),  # empty reference
        ("deposit", "r" * 129, 5, AVAILABLE),  # reference too long
        ("deposit", "r", 0, AVAILABLE),  # zero line
        ("deposit", "r", 5, "pending"),  # unknown bucket
        ("deposit", "r", 10**78, AVAILABLE),  # wider than NUMERIC(78)
    ],
)
def test_malformed_entries_are_refused(
    trader: Account,
    deposits: Account,
    usdc: Asset,
    kind: str,
    reference: str,
    amount: int,
    bucket: str,
) -> None:
    lines = [Line(deposits.pk, usdc.pk, -amount, bucket), Line(trader.pk, usdc.pk, amount, bucket)]
    with pytest.raises(InvalidEntry):
        post_entry(kind=kind, reference=reference, lines=lines)
    assert not JournalEntry.objects.exists()


def test_unknown_account_is_refused_and_nothing_is_written(usdc: Asset, deposits: Account) -> None:
    missing = Account.objects.order_by("-id").first().pk + 1000
    lines = [Line(deposits.pk, usdc.pk, -5), Line(missing, usdc.pk, 5)]
    with pytest.raises(InvalidEntry):
        post_entry(kind="deposit", reference="x", lines=lines)
    assert not JournalEntry.objects.exists()
    assert not Balance.objects.exists()


def test_same_reference_applies_once(trader: Account, usdc: Asset) -> None:
    first = services.credit_deposit(account=trader, asset=usdc, amount=70, reference="tx:1")
    again = services.credit_deposit(account=trader, asset=usdc, amount=70, reference="tx:1")
    assert again.pk == first.pk
    assert balance_of(trader, usdc) == (70, 0)
    assert JournalLine.objects.filter(entry=first).count() == 2
    # The same reference under another kind is another entry.
    services.hold(account=trader, asset=usdc, amount=70, reference="tx:1")
    assert balance_of(trader, usdc) == (0, 70)


def test_same_reference_with_different_lines_is_a_conflict(trader: Account, usdc: Asset) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=70, reference="tx:1")
    with pytest.raises(ReferenceConflict):
        services.credit_deposit(account=trader, asset=usdc, amount=71, reference="tx:1")
    assert balance_of(trader, usdc) == (70, 0)


def test_insufficient_funds_changes_nothing(trader: Account, usdc: Asset) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=100, reference="tx:1")
    with pytest.raises(InsufficientFunds) as error:
        services.hold(account=trader, asset=usdc, amount=101, reference="order:1")
    assert error.value.code == "insufficient_funds"
    assert error.value.status_code == 409
    assert error.value.extra["bucket"] == "available"
    assert error.value.extra["balance"] == "100"
    assert error.value.extra["shortfall"] == "1"
    assert balance_of(trader, usdc) == (100, 0)
    assert not JournalEntry.objects.filter(kind="hold").exists()
    # The refused reference was not burnt: a valid posting under it still goes through.
    services.hold(account=trader, asset=usdc, amount=100, reference="order:1")
    assert balance_of(trader, usdc) == (0, 100)


def test_release_cannot_exceed_held(trader: Account, usdc: Asset) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=100, reference="tx:1")
    services.hold(account=trader, asset=usdc, amount=40, reference="order:1")
    with pytest.raises(InsufficientFunds) as error:
        services.release(account=trader, asset=usdc, amount=41, reference="order:1:cancel")
    assert error.value.extra["bucket"] == "held"
    assert balance_of(trader, usdc) == (60, 40)


def test_fees_account_cannot_go_negative_but_deposits_can(
    trader: Account, usdc: Asset, deposits: Account
) -> None:
    fees = system_account(SYSTEM_FEES)
    with pytest.raises(InsufficientFunds):
        post_entry(
            kind="adjustment",
            reference="refund",
            lines=[Line(fees.pk, usdc.pk, -5), Line(trader.pk, usdc.pk, 5)],
        )
    services.credit_deposit(account=trader, asset=usdc, amount=5, reference="tx")
    assert balance_of(deposits, usdc) == (-5, 0)


def test_database_refuses_a_negative_trader_balance_even_from_raw_sql(
    trader: Account, usdc: Asset
) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=10, reference="tx")
    with (
        pytest.raises(IntegrityError, match="ledger_balance_non_negative"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE ledger_balance SET held = held - 11 WHERE account_id = %s", [trader.pk]
        )
    assert balance_of(trader, usdc) == (10, 0)


def test_deposit_account_row_is_marked_system(trader: Account, usdc: Asset) -> None:
    services.credit_deposit(account=trader, asset=usdc, amount=10, reference="tx")
    flags = dict(Balance.objects.values_list("account__address", "is_system"))
    assert flags == {trader.address: False, SYSTEM_DEPOSITS: True}


def test_post_entries_skips_known_references_and_reports_them(
    trader: Account, usdc: Asset, deposits: Account
) -> None:
    def deposit(reference: str, amount: int) -> NewEntry:
        lines = [Line(deposits.pk, usdc.pk, -amount), Line(trader.pk, usdc.pk, amount)]
        return NewEntry(kind="deposit", reference=reference, lines=lines)

    earlier = post_entry(kind="deposit", reference="a", lines=deposit("a", 1).lines)
    posted = post_entries([deposit("a", 1), deposit("b", 2), deposit("b", 2), deposit("c", 4)])
    assert [(p.reference, p.created) for p in posted] == [
        ("a", False),
        ("b", True),
        ("b", False),
        ("c", True),
    ]
    assert posted[0].entry_id == earlier.pk
    assert posted[1].entry_id == posted[2].entry_id
    assert balance_of(trader, usdc) == (7, 0)
    with pytest.raises(ReferenceConflict):
        post_entries([deposit("d", 1), deposit("d", 2)])
    assert not JournalEntry.objects.filter(reference="d").exists()


def test_post_entries_refuses_the_whole_batch_when_one_entry_overdraws(
    make_trader, usdc: Asset
) -> None:
    alice, bob = make_trader(), make_trader()
    services.credit_deposit(account=alice, asset=usdc, amount=10, reference="tx")
    pay = [Line(alice.pk, usdc.pk, -10), Line(bob.pk, usdc.pk, 10)]
    pay_back = [Line(bob.pk, usdc.pk, -10), Line(alice.pk, usdc.pk, 10)]
    with pytest.raises(InsufficientFunds) as error:
        post_entries(
            [
                NewEntry("trade", "t1", pay),
                NewEntry("trade", "t2", pay),  # alice has nothing left after t1
                NewEntry("trade", "t3", pay_back),  # would net it out, but comes too late
            ]
        )
    assert error.value.extra["reference"] == "t2"
    assert balance_of(alice, usdc) == (10, 0)
    assert not JournalEntry.objects.filter(kind="trade").exists()


def test_post_entries_uses_the_same_few_statements_whatever_the_batch_size(
    make_trader, usdc: Asset, weth: Asset, deposits: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    traders = [make_trader() for _ in range(20)]
    executed: list[str] = []
    real_cursor = pgbulk.cursor

    class CountingCursor:
        def __init__(self, cursor) -> None:  # type: ignore[no-untyped-def]
            self.cursor = cursor

        def execute(self, query, params=None):  # type: ignore[no-untyped-def]
            executed.append(query)
            return self.cursor.execute(query, params)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(self.cursor)

    @contextmanager
    def counting_cursor():  # type: ignore[no-untyped-def]
        with real_cursor() as cursor:
            yield CountingCursor(cursor)

    monkeypatch.setattr(pgbulk, "cursor", counting_cursor)

    def deposits_for(batch: str) -> list[NewEntry]:
        return [
            NewEntry(
                kind="deposit",
                reference=f"{batch}:{t.pk}:{asset.pk}",
                lines=[Line(deposits.pk, asset.pk, -5), Line(t.pk, asset.pk, 5)],
            )
            for t in traders
            for asset in (usdc, weth)
        ]

    # Creates the 41 balance rows: a look at those not moved, their INSERT, a second move.
    post_entries(deposits_for("warm-up"))
    assert len(executed) == 5
    executed.clear()
    post_entries(deposits_for("one")[:1])
    single = len(executed)
    executed.clear()
    post_entries(deposits_for("many"))
    assert single == len(executed) == 2  # entries with their lines; lock and move balances
