"""`manage.py backup` (`make backup`): a verified base backup of the exchange's cluster into
BACKUP_DIR, then the retention rule (BACKUP_KEEP newest, with the WAL they need)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.ops.backups import (
    BackupError,
    Layout,
    Server,
    base_backup,
    prune,
    replication_allowed,
)

HOW_TO_ALLOW = (
    "PostgreSQL at {host}:{port} refuses replication connections: add a line such as "
    "`host replication {user} 127.0.0.1/32 scram-sha-256` to its pg_hba.conf and reload it "
    "(docs/OPERATIONS.md, Backups)"
)


def server_from_settings() -> Server:
    db = settings.DATABASES["default"]
    return Server(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432), db["USER"], db["PASSWORD"])


class Command(BaseCommand):
    help = "Take a verified base backup into BACKUP_DIR and prune old ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0,
                            help="keep running, taking one every this many seconds")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        server = server_from_settings()
        if not replication_allowed(server):
            raise CommandError(HOW_TO_ALLOW.format(**vars(server)))
        while True:
            self.take(server, Layout(Path(settings.BACKUP_DIR)))
            if not options["every"]:
                return
            time.sleep(options["every"])

    def take(self, server: Server, layout: Layout) -> None:
        self.stdout.write(f"base backup of {server.host}:{server.port} into {layout.base} ...")
        try:
            backup = base_backup(server, layout)
            pruned = prune(layout, settings.BACKUP_KEEP)
        except BackupError as error:
            raise CommandError(str(error)) from error
        took = (backup.finished - backup.started).total_seconds()
        self.stdout.write(
            f"backup {backup.path.name}: {backup.size_bytes / 2**20:.1f} MiB in {took:.1f} s,"
            f" verified (pg_verifybackup); pruned {len(pruned)}, keeping {settings.BACKUP_KEEP}",
            ending="\n",
        )
        self.stdout.flush()
