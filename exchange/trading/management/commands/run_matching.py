"""`python manage.py run_matching [--markets A-B,C-D] [--batch-size N] ...`: the matching worker.

The same process as `python -m workers.matching` (its options are passed through unchanged):
it owns the markets it can lock and applies their sequenced commands until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the matching worker (options as for `python -m workers.matching --help`)."

    def run_from_argv(self, argv: list[str]) -> None:
        # argv is [manage.py, run_matching, ...]: the worker's own parser owns the options.
        from workers.matching import main

        main(argv[2:])

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("run_matching")
        from workers.matching import main

        main([])
