"""`manage.py restore_drill [--until ISO-TIME]` (`make restore-drill`): restore the newest base
backup plus the streamed WAL into a fresh cluster, check it, and report the RPO and RTO."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.ops.backups import BackupError, Layout
from exchange.ops.drill import report_json, restore_drill


class Command(BaseCommand):
    help = "Restore the newest backup into a fresh cluster, check it, report RPO and RTO."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--until",
            type=datetime.fromisoformat,
            default=None,
            help="point in time to recover to (default: all streamed WAL)",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        db = settings.DATABASES["default"]
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        source = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        # /var/tmp: the postgres user must be able to enter it (a checkout may not let it).
        with tempfile.TemporaryDirectory(prefix="clearway-drill-", dir="/var/tmp") as work:
            try:
                report = restore_drill(
                    layout=Layout(Path(settings.BACKUP_DIR)),
                    work_dir=Path(work),
                    database=db["NAME"],
                    source_url=source,
                    until=options["until"],
                    say=lambda text: self.stdout.write(f"restore drill: {text}"),
                )
            except BackupError as error:
                raise CommandError(str(error)) from error
        self.stdout.write(report_json(report) if options["json"] else "\n".join(report.lines()))
        if report.ledger_check != "ok":
            raise CommandError("the restored ledger does not balance")
