"""The small restore drill: a private cluster holding the exchange's schema, its WAL streamed by
pg_receivewal, a verified base backup taken with `manage.py backup`, more money moved after it
(only in the WAL), then `manage.py restore_drill` restores both into a fresh cluster that must
hold every committed entry, balance its ledger and load its books."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from exchange.devstack import services
from exchange.devstack.procs import REPO, ManagedProcess, free_port
from exchange.ops.backups import Layout, Server, wal_receiver_argv
from tests.support import database_url
from tests.waiting import wait_for

pytestmark = pytest.mark.services

DEPOSITS = """
from django.core.management import call_command
from exchange.accounts.services import trader_get_or_create
from exchange.ledger.services import credit_deposit
from exchange.markets.models import Asset
call_command("bootstrap_demo", stdout=open("/dev/null", "w"))
alice = trader_get_or_create(address="0x" + "a1" * 20)
usdc = Asset.objects.get(symbol="USDC")
for i in range({count}):
    credit_deposit(account=alice, asset=usdc, amount=1_000_000 + i, reference="{tag}-%d" % i)
"""


def manage(*args: str, env: dict[str, str], code: str | None = None) -> str:
    argv = [sys.executable, "manage.py", *args] + (["-c", code] if code else [])
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM ledger_journalentry),"
            " (SELECT coalesce(sum(available), 0) FROM ledger_balance WHERE NOT is_system)"
        ).fetchone()


def caught_up(url: str) -> bool:
    """The WAL receiver has flushed everything the source has written."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT flush_lsn >= pg_current_wal_lsn() FROM pg_stat_replication"
        ).fetchone()
    return bool(row and row[0])


@pytest.fixture
def source(transactional_db, tmp_path):  # type: ignore[no-untyped-def]
    """A private cluster with the test database's schema (nothing else runs there)."""
    import os

    # /var/tmp: the postgres user must be able to enter it.
    work = Path(tempfile.mkdtemp(prefix="clearway-drill-src-", dir="/var/tmp"))
    work.chmod(0o755)
    port = free_port()
    proc = services.start_postgres(data_dir=work / "data", port=port, log_dir=tmp_path)
    url = f"postgres://postgres@127.0.0.1:{port}/clearway_drill"
    services.create_database(url)
    schema = subprocess.run(["pg_dump", "--schema-only", "--no-owner", database_url()],
                            capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=schema.stdout,
                   capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    env = {**os.environ, "DATABASE_URL": url, "BACKUP_DIR": str(tmp_path / "backups")}
    yield url, env, Layout(tmp_path / "backups"), tmp_path
    proc.stop()
    subprocess.run(["rm", "-rf", str(work)], check=True)


def test_a_backup_plus_streamed_wal_restores_every_committed_entry(source) -> None:  # type: ignore[no-untyped-def]
    url, env, layout, logs = source
    manage("shell", env=env, code=DEPOSITS.format(count=5, tag="before"))
    receiver = ManagedProcess.start(
        "pg_receivewal", wal_receiver_argv(Server.from_url(url), layout), log_dir=logs
    )
    try:
        wait_for(lambda: caught_up(url), "the WAL receiver connected and caught up")
        out = manage("backup", env=env)
        assert "verified (pg_verifybackup)" in out
        assert len(layout.backups()) == 1
        # Money moved after the base backup exists only in the streamed WAL.
        manage("shell", env=env, code=DEPOSITS.format(count=7, tag="after"))
        wait_for(lambda: caught_up(url), "the WAL receiver flushed the last commits")
        expected = counts(url)

        drill = manage("restore_drill", "--json", env=env)
    finally:
        receiver.stop()

    report = json.loads(drill[drill.index("{") :])
    print("restore drill report:", json.dumps(report))  # the figures docs/OPERATIONS.md quotes
    assert report["ledger_check"] == "ok"
    assert report["journal_entries"] == expected[0] == 12
    assert report["books"] == {"WETH-USDC": 0}
    assert report["rpo_seconds"] == 0 and report["rpo_basis"] == "vs the source"
    assert 0 < report["rto_seconds"] < 15 * 60
    assert report["restored_to"] == "end of the streamed WAL"
