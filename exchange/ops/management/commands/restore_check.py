"""`manage.py restore_check`: what a restored database must show before it serves again: the
ledger's invariants hold (ledger_check), every market's book loads from the orders, and when
its last money-moving commit happened. Prints one JSON object (the restore drill reads it)."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max

from exchange.ledger.models import JournalEntry
from exchange.markets.models import Market
from exchange.matching_worker.book_state import load_book
from exchange.trading.models import OrderCommand


def latest_commit() -> str | None:
    """The newest journal entry or order command: the last committed data that matters."""
    times = [
        JournalEntry.objects.aggregate(t=Max("created_at"))["t"],
        OrderCommand.objects.aggregate(t=Max("accepted_at"))["t"],
    ]
    present = [t for t in times if t is not None]
    return max(present).isoformat() if present else None


class Command(BaseCommand):
    help = "Check a restored database: ledger invariants, books, last commit (JSON)."

    def handle(self, *args: Any, **options: Any) -> None:
        out = io.StringIO()
        try:
            call_command("ledger_check", stdout=out)
            ledger = "ok"
        except CommandError as error:
            ledger = f"FAILED: {error}"
        books = {}
        for market in Market.objects.select_related("base", "quote"):
            _, resting = load_book(market)
            books[market.symbol] = len(resting)
        report = {
            "ledger_check": ledger,
            "books": books,
            "journal_entries": JournalEntry.objects.count(),
            "order_commands": OrderCommand.objects.count(),
            "latest_commit": latest_commit(),
        }
        self.stdout.write(json.dumps(report))
        if ledger != "ok":
            raise CommandError(ledger)
