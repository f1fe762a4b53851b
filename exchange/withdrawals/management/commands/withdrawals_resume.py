"""Start the workflow of every withdrawal whose start did not go through (Temporal was down)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from exchange.withdrawals.temporal import withdrawals_resume


class Command(BaseCommand):
    help = "Start missing withdrawal workflows (delivering decisions already recorded)."

    def handle(self, *args: object, **options: object) -> None:
        started, failed = withdrawals_resume()
        self.stdout.write(f"started {started} withdrawal workflow(s), {failed} failed")
        if failed:
            raise CommandError(f"{failed} withdrawal workflow(s) could not be started")
