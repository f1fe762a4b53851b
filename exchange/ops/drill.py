"""The restore drill: the newest base backup plus the streamed WAL into a fresh cluster, started,
checked (`restore_check`: ledger invariants, books, last commit), with the measured RPO (seconds
of committed data lost) and RTO (wall time from the start of the drill to a checked database)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from exchange.devstack import services
from exchange.devstack.procs import REPO, ManagedProcess, StackError, free_port, wait_until
from exchange.ops.backups import BackupError, BaseBackup, Layout, prepare_restore

# The objective the drill is held to (docs/OPERATIONS.md): a restored, checked database within.
RTO_SECONDS = 15 * 60


@dataclass
class DrillReport:
    backup: str
    backup_bytes: int
    restored_to: str
    rto_seconds: float
    rpo_seconds: float | None
    rpo_basis: str
    ledger_check: str
    books: dict[str, int]
    journal_entries: int
    order_commands: int
    latest_commit: str | None

    def lines(self) -> list[str]:
        rpo = "unknown" if self.rpo_seconds is None else f"{self.rpo_seconds:.1f} s"
        return [
            f"backup          {self.backup} ({self.backup_bytes / 2**20:.1f} MiB)",
            f"restored to     {self.restored_to}",
            f"ledger_check    {self.ledger_check}",
            f"books           {', '.join(f'{k}: {v} resting' for k, v in self.books.items())}",
            f"data            {self.journal_entries} journal entries, "
            f"{self.order_commands} order commands, last commit {self.latest_commit}",
            f"RPO             {rpo} ({self.rpo_basis})",
            f"RTO             {self.rto_seconds:.1f} s (objective {RTO_SECONDS} s)",
        ]


def _recovered(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
    except psycopg.Error:
        return False


def _source_latest(source_url: str) -> datetime | None:
    """The source's newest journal entry or command, if it still answers (a drill; in a real
    disaster it does not, and the RPO is bounded by the WAL stream's lag instead)."""
    import psycopg

    query = """SELECT max(t) FROM (SELECT max(created_at) t FROM ledger_journalentry
               UNION ALL SELECT max(accepted_at) FROM trading_ordercommand) x"""
    try:
        with psycopg.connect(source_url, connect_timeout=2) as conn:
            return conn.execute(query).fetchone()[0]
    except psycopg.Error:
        return None


def restore_drill(
    *,
    layout: Layout,
    work_dir: Path,
    database: str,
    source_url: str | None = None,
    until: datetime | None = None,
    say=print,  # type: ignore[no-untyped-def]
) -> DrillReport:
    """Restore, start, check and measure; the restored cluster is stopped at the end and its
    directory removed."""
    started = time.monotonic()
    backups = layout.backups()
    if not backups:
        raise BackupError(f"no base backup under {layout.base}: run `make backup` first")
    backup = BaseBackup.read(backups[-1])
    source_latest = _source_latest(source_url) if source_url else None
    data_dir = work_dir / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    work_dir.chmod(0o755)
    say(f"restoring {backup.path.name} into {data_dir}")
    prepare_restore(backup, layout, data_dir, until)
    prefix = services._unprivileged_prefix()
    if prefix:
        subprocess.run(["chown", "-R", "postgres", str(work_dir)], check=True)
    port = free_port()
    proc = ManagedProcess.start(
        "restore-drill-postgres",
        [*prefix, services.postgres_bin("postgres"), "-D", str(data_dir), "-p", str(port)],
        log_dir=work_dir,
    )
    try:
        url = f"postgres://postgres@127.0.0.1:{port}/{database}"
        say("replaying the WAL")
        try:
            wait_until(lambda: _recovered(url), timeout=RTO_SECONDS, what="recovery", proc=proc)
        except StackError as error:
            lines = proc.log_path.read_text(errors="replace").splitlines()
            log = "\n".join(line for line in lines if "is starting up" not in line)[-2000:]
            raise BackupError(f"the restored cluster did not come up: {error}\n{log}") from error
        say("checking the restored database (ledger_check, books)")
        check = subprocess.run(
            [sys.executable, "manage.py", "restore_check"],
            cwd=REPO, capture_output=True, text=True, timeout=RTO_SECONDS,
            env={**os.environ, "DATABASE_URL": url},
        )  # fmt: skip
        if not check.stdout.strip():
            raise BackupError(f"restore_check failed: {check.stderr.strip()[-2000:]}")
        found = json.loads(check.stdout.strip().splitlines()[-1])
        rto = time.monotonic() - started
    finally:
        proc.stop()
    restored_latest = (
        datetime.fromisoformat(found["latest_commit"]) if found["latest_commit"] else None
    )
    if source_latest is not None and restored_latest is not None:
        rpo, basis = max(0.0, (source_latest - restored_latest).total_seconds()), "vs the source"
    else:
        rpo, basis = None, "source unreachable: see the WAL stream's lag"
    return DrillReport(
        backup=backup.path.name,
        backup_bytes=backup.size_bytes,
        restored_to=until.isoformat() if until else "end of the streamed WAL",
        rto_seconds=round(rto, 1),
        rpo_seconds=None if rpo is None else round(rpo, 3),
        rpo_basis=basis,
        ledger_check=found["ledger_check"],
        books=found["books"],
        journal_entries=found["journal_entries"],
        order_commands=found["order_commands"],
        latest_commit=found["latest_commit"],
    )


def report_json(report: DrillReport) -> str:
    return json.dumps(asdict(report), indent=1)
