"""The in-process matching worker for API tests (tests/trading and the API docs test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange.matching_worker.runner import Worker


@pytest.fixture
def worker(market) -> Iterator[Worker]:
    """The real matching worker, in process: commands placed through the API are applied (and
    trades made) only when the test drains it. Committed batches are not published: these tests
    read the results through REST, and Redis keys shared with other test runs stay untouched."""
    worker = Worker(batch_size=50, timer_seconds=3600, publish=lambda batch: None)
    yield worker
    worker._release_all()


def drain(worker: Worker) -> int:
    """Apply every sequenced command; returns how many were applied."""
    total = 0
    while (count := worker.run_once()) > 0:
        total += count
    return total
