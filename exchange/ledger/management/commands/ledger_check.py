"""Verify the ledger's invariants; exit non-zero naming each asset that drifted.

Per asset:
  (a) all balances, system accounts included, sum to zero;
  (b) every balance equals the sum of its journal lines, bucket by bucket;
  (c) no trader, system:fees or system:withdrawals bucket is negative;
  (d) conservation: traders + system:fees hold deposits credited minus withdrawals paid, both
      taken from the journal of system:deposits and system:withdrawals;
  (e) every journal entry's lines sum to zero, and every line belongs to an entry (the
      database does not check that link row by row: see JournalLine.entry).

Reads one consistent snapshot (REPEATABLE READ) so postings committed meanwhile cause no false
alarm. Scans every balance and journal line: an operator's check, not a per-request one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from exchange.accounts.models import SYSTEM_DEPOSITS, SYSTEM_FEES, SYSTEM_WITHDRAWALS, Account
from exchange.ledger.models import Balance, JournalEntry, JournalLine
from exchange.ledger.services import NON_NEGATIVE_SYSTEM_ACCOUNTS
from exchange.markets.models import Asset
from exchange.money import from_base_units

_BALANCE = Balance._meta.db_table
_LINE = JournalLine._meta.db_table
_ENTRY = JournalEntry._meta.db_table
_ACCOUNT = Account._meta.db_table
_ASSET = Asset._meta.db_table

_TOTALS = f"""
    SELECT s.id, s.symbol, s.decimals,
           COALESCE(b.all_sum, 0), COALESCE(b.owed, 0),
           COALESCE(-j.deposits, 0), COALESCE(j.withdrawals, 0)
    FROM {_ASSET} s
    LEFT JOIN (
        SELECT b.asset_id,
               SUM(b.available + b.held) AS all_sum,
               SUM(b.available + b.held) FILTER (WHERE NOT b.is_system OR a.address = %s) AS owed
        FROM {_BALANCE} b JOIN {_ACCOUNT} a ON a.id = b.account_id
        GROUP BY b.asset_id
    ) b ON b.asset_id = s.id
    LEFT JOIN (
        SELECT l.asset_id,
               SUM(l.amount) FILTER (WHERE a.address = %s) AS deposits,
               SUM(l.amount) FILTER (WHERE a.address = %s) AS withdrawals
        FROM {_LINE} l JOIN {_ACCOUNT} a ON a.id = l.account_id
        WHERE a.address IN (%s, %s)
        GROUP BY l.asset_id
    ) j ON j.asset_id = s.id
    ORDER BY s.symbol
"""

_BALANCE_VS_LINES = f"""
    WITH l AS (
        SELECT account_id, asset_id,
               COALESCE(SUM(amount) FILTER (WHERE bucket = 'available'), 0) AS available,
               COALESCE(SUM(amount) FILTER (WHERE bucket = 'held'), 0) AS held
        FROM {_LINE} GROUP BY account_id, asset_id
    )
    SELECT COALESCE(b.asset_id, l.asset_id), COALESCE(b.account_id, l.account_id),
           COALESCE(b.available, 0) - COALESCE(l.available, 0),
           COALESCE(b.held, 0) - COALESCE(l.held, 0)
    FROM {_BALANCE} b
    FULL OUTER JOIN l ON l.account_id = b.account_id AND l.asset_id = b.asset_id
    WHERE COALESCE(b.available, 0) <> COALESCE(l.available, 0)
       OR COALESCE(b.held, 0) <> COALESCE(l.held, 0)
    ORDER BY 1, 2
"""

_NEGATIVE = f"""
    SELECT b.asset_id, a.address, b.available, b.held
    FROM {_BALANCE} b JOIN {_ACCOUNT} a ON a.id = b.account_id
    WHERE (NOT b.is_system OR a.address = ANY(%s::text[])) AND (b.available < 0 OR b.held < 0)
    ORDER BY b.asset_id, a.address
"""

# A line without its entry comes out with a NULL kind (its entry id as the reference).
_UNBALANCED_ENTRIES = f"""
    SELECT l.asset_id, e.kind, COALESCE(e.reference, l.entry_id::text), SUM(l.amount)
    FROM {_LINE} l LEFT JOIN {_ENTRY} e ON e.id = l.entry_id
    GROUP BY l.asset_id, l.entry_id, e.kind, e.reference
    HAVING SUM(l.amount) <> 0 OR e.kind IS NULL
    ORDER BY l.asset_id, l.entry_id
"""

_MAX_LISTED = 5


@dataclass
class AssetReport:
    symbol: str
    decimals: int
    all_sum: int
    owed: int
    deposits: int
    withdrawals: int
    problems: list[str] = field(default_factory=list)

    @property
    def conservation_drift(self) -> int:
        return self.owed - (self.deposits - self.withdrawals)

    def amount(self, units: int) -> str:
        return from_base_units(units, self.decimals)


class Command(BaseCommand):
    help = "Check ledger invariants per asset; exits non-zero on any drift."

    def handle(self, *args: Any, **options: Any) -> None:
        reports = self._collect()
        self._print_table(reports)
        problems = [f"{r.symbol}: {p}" for r in reports.values() for p in r.problems]
        if problems:
            raise CommandError("ledger drift:\n  " + "\n  ".join(problems))
        self.stdout.write(self.style.SUCCESS(f"ledger consistent for {len(reports)} asset(s)"))

    def _collect(self) -> dict[int, AssetReport]:
        # Inside a caller's transaction (a test) the snapshot is the caller's to choose.
        outermost = not connection.in_atomic_block
        with transaction.atomic(), connection.cursor() as cursor:
            if outermost:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return self._run_checks(cursor)

    def _run_checks(self, cursor: Any) -> dict[int, AssetReport]:
        cursor.execute(
            _TOTALS,
            [SYSTEM_FEES, SYSTEM_DEPOSITS, SYSTEM_WITHDRAWALS, SYSTEM_DEPOSITS, SYSTEM_WITHDRAWALS],
        )
        reports = {
            row[0]: AssetReport(row[1], row[2], *(int(v) for v in row[3:])) for row in cursor
        }

        for report in reports.values():
            if report.all_sum:
                report.problems.append(
                    f"(a) balances sum to {report.amount(report.all_sum)}, expected 0 "
                    f"(difference {report.all_sum} base units)"
                )

        cursor.execute(_BALANCE_VS_LINES)
        mismatches: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for asset_id, account_id, d_available, d_held in cursor:
            mismatches[asset_id].append((account_id, int(d_available), int(d_held)))
        for asset_id, rows in mismatches.items():
            report = reports[asset_id]
            listed = ", ".join(
                f"account {account} available {d_a:+} held {d_h:+}"
                for account, d_a, d_h in rows[:_MAX_LISTED]
            )
            more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
            report.problems.append(
                f"(b) {len(rows)} balance(s) differ from their journal lines "
                f"(balance - lines, base units): {listed}{more}"
            )

        cursor.execute(_NEGATIVE, [list(NON_NEGATIVE_SYSTEM_ACCOUNTS)])
        for asset_id, address, available, held in cursor:
            report = reports[asset_id]
            report.problems.append(
                f"(c) {address} is negative: available {report.amount(int(available))}, "
                f"held {report.amount(int(held))}"
            )

        for report in reports.values():
            drift = report.conservation_drift
            if drift:
                net = report.deposits - report.withdrawals
                report.problems.append(
                    f"(d) traders + fees hold {report.amount(report.owed)} but deposits credited "
                    f"minus withdrawals paid is {report.amount(net)} "
                    f"(difference {drift} base units)"
                )

        cursor.execute(_UNBALANCED_ENTRIES)
        for asset_id, kind, reference, total in cursor:
            reports[asset_id].problems.append(
                f"(e) lines of entry {reference} sum to {int(total)} base units but the entry "
                "does not exist"
                if kind is None
                else f"(e) entry {kind}:{reference} lines sum to {int(total)} base units, "
                "expected 0"
            )
        return reports

    def _print_table(self, reports: dict[int, AssetReport]) -> None:
        header = (
            "asset",
            "balances sum",
            "traders+fees",
            "deposits",
            "withdrawals",
            "drift",
            "status",
        )
        rows = [header]
        for r in reports.values():
            rows.append(
                (
                    r.symbol,
                    r.amount(r.all_sum),
                    r.amount(r.owed),
                    r.amount(r.deposits),
                    r.amount(r.withdrawals),
                    r.amount(r.conservation_drift),
                    "DRIFT" if r.problems else "ok",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            )


def collect_reports() -> dict[int, AssetReport]:
    """The check's per-asset reports, for callers other than the command (the ops gauges)."""
    return Command()._collect()
