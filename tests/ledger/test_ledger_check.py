from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from exchange.accounts.models import SYSTEM_FEES, Account
from exchange.accounts.services import system_account
from exchange.ledger import services
from exchange.ledger.models import JournalLine
from exchange.ledger.services import Line, NewEntry, post_entries
from exchange.markets.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_ledger(make_trader: Callable[[], Account], usdc: Asset, weth: Asset) -> list[Account]:
    """Deposits, holds, a trade with a fee, a cancel and a paid withdrawal."""
    alice, bob = make_trader(), make_trader()
    fees = system_account(SYSTEM_FEES)
    services.credit_deposit(account=alice, asset=usdc, amount=5_000_000, reference="d1")
    services.credit_deposit(account=bob, asset=weth, amount=3 * 10**18, reference="d2")
    services.hold(account=alice, asset=usdc, amount=2_000_000, reference="order:1")
    services.hold(account=bob, asset=weth, amount=10**18, reference="order:2")
    post_entries(
        [
            NewEntry(
                kind="trade",
                reference="trade:1",
                lines=[
                    Line(bob.pk, weth.pk, -(10**18), "held"),
                    Line(alice.pk, weth.pk, 10**18),
                    Line(alice.pk, usdc.pk, -1_800_000, "held"),
                    Line(bob.pk, usdc.pk, 1_798_200),
                    Line(fees.pk, usdc.pk, 1_800),
                ],
            )
        ]
    )
    services.release(account=alice, asset=usdc, amount=200_000, reference="order:1:rest")
    services.hold(account=bob, asset=usdc, amount=1_000_000, reference="withdrawal:1")
    services.pay_withdrawal(account=bob, asset=usdc, amount=1_000_000, reference="withdrawal:1")
    return [alice, bob]


def run_check() -> str:
    out = StringIO()
    call_command("ledger_check", stdout=out)
    return out.getvalue()


def test_a_consistent_ledger_passes(busy_ledger: list[Account]) -> None:
    output = run_check()
    assert "ledger consistent for 2 asset(s)" in output
    usdc_row = next(line for line in output.splitlines() if line.startswith("USDC"))
    # balances sum, traders+fees, deposits, withdrawals, drift
    assert usdc_row.split()[:6] == ["USDC", "0", "4", "5", "1", "0"]


def test_a_tampered_balance_is_reported_with_asset_and_difference(
    busy_ledger: list[Account], weth: Asset
) -> None:
    alice = busy_ledger[0]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_balance SET available = available + 5 "
            "WHERE account_id = %s AND asset_id = %s",
            [alice.pk, weth.pk],
        )

    with pytest.raises(CommandError) as error:
        run_check()

    message = str(error.value)
    assert "WETH: (a) balances sum to 0.000000000000000005" in message
    assert "difference 5 base units" in message
    assert "WETH: (b) 1 balance(s) differ from their journal lines" in message
    assert f"account {alice.pk} available +5 held +0" in message
    assert "WETH: (d)" in message
    assert "USDC" not in message


def test_a_tampered_journal_line_is_reported(busy_ledger: list[Account], usdc: Asset) -> None:
    line = JournalLine.objects.filter(asset=usdc, entry__reference="trade:1", amount=1_800).get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_journalline SET amount = 1801 WHERE id = %s", [line.pk])

    with pytest.raises(CommandError) as error:
        run_check()

    message = str(error.value)
    assert "USDC: (e) entry trade:trade:1 lines sum to 1 base units" in message
    assert "USDC: (b)" in message
    assert "WETH" not in message


def test_a_line_without_its_entry_is_reported(busy_ledger: list[Account], usdc: Asset) -> None:
    line = JournalLine.objects.filter(asset=usdc, entry__reference="trade:1", amount=1_800).get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ledger_journalline SET entry_id = -1 WHERE id = %s", [line.pk])

    with pytest.raises(CommandError) as error:
        run_check()

    message = str(error.value)
    assert "USDC: (e) lines of entry -1 sum to 1800 base units but the entry does not exist" in (
        message
    )
    assert "USDC: (e) entry trade:trade:1 lines sum to -1800 base units" in message


def test_a_negative_trader_balance_is_reported(busy_ledger: list[Account], usdc: Asset) -> None:
    alice = busy_ledger[0]
    with connection.cursor() as cursor:
        # Balanced and journalled, but negative: only possible by bypassing the CHECK constraint.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending FK checks
        cursor.execute("ALTER TABLE ledger_balance DROP CONSTRAINT ledger_balance_non_negative")
        cursor.execute(
            "UPDATE ledger_balance SET held = held - 1, available = available + 1 "
            "WHERE account_id = %s AND asset_id = %s",
            [alice.pk, usdc.pk],
        )

    with pytest.raises(CommandError) as error:
        run_check()

    assert f"USDC: (c) {alice.address} is negative: available 3.200001, held -0.000001" in str(
        error.value
    )
