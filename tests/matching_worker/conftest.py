"""Real worker processes (``python -m workers.matching``) against this test run's database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import close_old_connections, connection

from exchange.matching_worker.runner import LOCK_NAMESPACE
from exchange.trading.models import MarketCursor, MarketSequence

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 60  # seconds to wait for something that must happen (a bound, never an assertion)


def database_url() -> str:
    """DATABASE_URL naming the test database (settings name it only once pytest made it)."""
    db = settings.DATABASES["default"]
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


@dataclass
class WorkerProcess:
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def application_name(self) -> str:
        return f"clearway-matching-{self.pid}"

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=DEADLINE)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path, settings) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(*args, manage=False) -> a running worker process (killed at teardown)."""
    parts = urlsplit(settings.REDIS_URL)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        # A Redis database of this test process's own: depth snapshots use fixed keys.
        "REDIS_URL": urlunsplit(parts._replace(path=f"/{1 + os.getpid() % 15}")),
        "MATCHING_METRICS_PORT": "0",
    }
    started: list[WorkerProcess] = []

    def start(*args: str, manage: bool = False) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        # The same worker, started as `python -m workers.matching` or `manage.py run_matching`.
        entry = ["manage.py", "run_matching"] if manage else ["-m", "workers.matching"]
        with log.open("w") as out:
            popen = subprocess.Popen(
                [sys.executable, *entry, "--metrics-port", "0", *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(WorkerProcess(popen, log))
        return started[-1]

    yield start
    for worker in started:
        worker.kill()
    # Our own connection must not hold the flush that transactional_db does next.
    connection.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.02)


def applied() -> dict[int, int]:
    close_old_connections()
    return dict(MarketCursor.objects.values_list("market_id", "applied_sequence"))


def newest() -> dict[int, int]:
    return dict(MarketSequence.objects.values_list("market_id", "last_sequence"))


def caught_up() -> bool:
    done = applied()
    return all(done.get(market, 0) >= seq for market, seq in newest().items())


def lock_holders() -> dict[int, str]:
    """market id -> application_name of the session holding its ownership lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.objid, a.application_name FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE],
        )
        return {int(objid): name for objid, name in cursor.fetchall()}
