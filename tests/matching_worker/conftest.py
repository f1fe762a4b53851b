"""Real worker processes (``python -m workers.matching``) against this test run's database."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.support import WorkerProcess, database_url


@pytest.fixture
def start_worker(tmp_path: Path, settings) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(*args, manage=False) -> a running worker process (killed at teardown)."""
    parts = urlsplit(settings.REDIS_URL)
    env = {
        "DATABASE_URL": database_url(),
        # A Redis database of this test process's own: depth snapshots use fixed keys.
        "REDIS_URL": urlunsplit(parts._replace(path=f"/{1 + os.getpid() % 15}")),
        "MATCHING_METRICS_PORT": "0",
    }
    started: list[WorkerProcess] = []

    def start(*args: str, manage: bool = False) -> WorkerProcess:
        # The same worker, started as `python -m workers.matching` or `manage.py run_matching`.
        module, first = ("manage", ["run_matching"]) if manage else ("workers.matching", [])
        worker = WorkerProcess(
            f"worker-{len(started)}",
            module,
            *first,
            "--metrics-port",
            "0",
            *args,
            env=env,
            log_dir=tmp_path,
        )
        started.append(worker.start())
        return worker

    yield start
    for worker in started:
        worker.stop()
    # Our own connection must not hold the flush that transactional_db does next.
    connection.close()
