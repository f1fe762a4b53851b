"""Backups of the exchange's PostgreSQL cluster with PostgreSQL's own tools: `pg_receivewal`
streams the WAL continuously (the RPO is what it has not written yet: with --synchronous, about
nothing), `pg_basebackup` takes base backups that `pg_verifybackup` checks, and a retention rule
prunes old base backups with the WAL only they needed. A restore is a base backup plus the WAL,
replayed to the end or to a point in time. docs/OPERATIONS.md has the runbook."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from exchange.devstack.services import postgres_bin

SLOT = "clearway_backup"
STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(RuntimeError):
    """A PostgreSQL tool failed; the message carries its own words."""


@dataclass(frozen=True)
class Server:
    """Where the cluster answers, as PostgreSQL's command-line tools take it."""

    host: str
    port: int
    user: str
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> Server:
        parts = urlsplit(url)
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 5432,
            unquote(parts.username or "postgres"),
            unquote(parts.password or ""),
        )

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-w"]

    def env(self) -> dict[str, str]:
        return {**os.environ, **({"PGPASSWORD": self.password} if self.password else {})}


@dataclass(frozen=True)
class Layout:
    """<root>/base/<stamp>/ (one plain-format base backup each) and <root>/wal/ (the stream)."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def wal(self) -> Path:
        return self.root / "wal"

    def backups(self) -> list[Path]:
        """Completed base backups, oldest first (a backup is complete once its meta exists)."""
        if not self.base.exists():
            return []
        return sorted(p for p in self.base.iterdir() if (p / "clearway-backup.json").exists())


def _run(argv: list[str], server: Server | None = None, timeout: float = 3600) -> str:
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=server.env() if server else None,
    )
    if result.returncode:
        tool = Path(argv[0]).name
        raise BackupError(f"{tool} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout


def wal_receiver_argv(server: Server, layout: Layout) -> list[str]:
    """The command that streams WAL into the backup directory until stopped (a supervised
    process of its own). Synchronous: each WAL write is flushed here before it is confirmed."""
    layout.wal.mkdir(parents=True, exist_ok=True)
    return [postgres_bin("pg_receivewal"), *server.args(), "-D", str(layout.wal),
            "--synchronous", "--no-loop"]  # fmt: skip


def replication_allowed(server: Server) -> bool:
    """Whether the server takes a physical replication connection from here (pg_hba.conf must
    have a `replication` entry: Debian's default cluster has none over TCP)."""
    import psycopg

    try:
        psycopg.connect(
            host=server.host, port=server.port, user=server.user, password=server.password,
            dbname="postgres", replication="true", connect_timeout=5, autocommit=True,
        ).close()  # fmt: skip
    except psycopg.Error:
        return False
    return True


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    started: datetime
    finished: datetime
    start_wal: str
    size_bytes: int

    def meta(self) -> dict[str, object]:
        return {
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "start_wal": self.start_wal,
            "size_bytes": self.size_bytes,
        }

    @classmethod
    def read(cls, path: Path) -> BaseBackup:
        meta = json.loads((path / "clearway-backup.json").read_text())
        return cls(
            path,
            datetime.fromisoformat(meta["started"]),
            datetime.fromisoformat(meta["finished"]),
            meta["start_wal"],
            meta["size_bytes"],
        )


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def base_backup(server: Server, layout: Layout) -> BaseBackup:
    """Take a base backup (its WAL streamed alongside, so it is restorable on its own), verify
    it against its manifest, and record it as complete."""
    started = datetime.now(UTC)
    path = layout.base / started.strftime(STAMP)
    layout.base.mkdir(parents=True, exist_ok=True)
    _run([postgres_bin("pg_basebackup"), *server.args(), "-D", str(path), "-Fp", "-X", "stream",
          "-c", "fast", "--no-sync", "-l", f"clearway {path.name}"], server)  # fmt: skip
    _run([postgres_bin("pg_verifybackup"), str(path)])
    label = (path / "backup_label").read_text()
    match = re.search(r"START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", label)
    if match is None:
        raise BackupError(f"no start WAL in {path / 'backup_label'}")
    backup = BaseBackup(path, started, datetime.now(UTC), match.group(1), _size(path))
    (path / "clearway-backup.json").write_text(json.dumps(backup.meta(), indent=1) + "\n")
    return backup


def prune(layout: Layout, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` base backups, and the streamed WAL older than the
    oldest one kept (it can only be replayed on top of a backup taken before it)."""
    backups = layout.backups()
    doomed = backups[:-keep] if len(backups) > keep else []
    for path in doomed:
        shutil.rmtree(path)
    kept = layout.backups()
    if kept and layout.wal.exists():
        oldest = BaseBackup.read(kept[0]).start_wal
        _run([postgres_bin("pg_archivecleanup"), str(layout.wal), oldest])
    return doomed


# Recovery refuses to run with a lower limit than the primary had (pg_controldata records them).
_LIMITS = {
    "max_connections": "max_connections setting",
    "max_worker_processes": "max_worker_processes setting",
    "max_wal_senders": "max_wal_senders setting",
    "max_prepared_transactions": "max_prepared_xacts setting",
    "max_locks_per_transaction": "max_locks_per_xact setting",
}


def _primary_limits(data_dir: Path) -> dict[str, int]:
    control = _run([postgres_bin("pg_controldata"), str(data_dir)])
    found = dict(line.split(":", 1) for line in control.splitlines() if ":" in line)
    return {name: int(found[label].strip()) for name, label in _LIMITS.items() if label in found}


def prepare_restore(backup: BaseBackup, layout: Layout, data_dir: Path, until: datetime | None):
    """A data directory that, once started, replays ``backup`` plus the streamed WAL (to
    ``until``, or to the end of what was received) and then opens for writes."""
    shutil.copytree(backup.path, data_dir)
    for name in ("clearway-backup.json", "backup_manifest"):
        (data_dir / name).unlink(missing_ok=True)
    # A copy of the streamed WAL beside the data directory: the server reads it as its own user,
    # who may not be able to read the backup directory (and the stream may still be writing).
    wal = data_dir.parent / "wal"
    if wal.exists():
        shutil.rmtree(wal)
    shutil.copytree(layout.wal, wal)
    # The segment being received is still named .partial: replay it too (it ends in zeros,
    # where recovery stops).
    restore = f"cp {wal}/%f %p 2>/dev/null || cp {wal}/%f.partial %p"
    settings = [
        f"restore_command = '{restore}'",
        "recovery_target_action = 'promote'",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{data_dir}'",
    ]
    settings += [f"{name} = {value}" for name, value in _primary_limits(data_dir).items()]
    if until is not None:
        settings.append(f"recovery_target_time = '{until.isoformat()}'")
    # Debian keeps postgresql.conf and pg_hba.conf out of the data directory: bring our own.
    (data_dir / "postgresql.conf").write_text("\n".join(settings) + "\n")
    (data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (data_dir / "recovery.signal").touch()
    data_dir.chmod(0o700)
