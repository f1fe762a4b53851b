"""The in-process matching worker for API tests (tests/trading and the API docs test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from exchange.client import ApiError
from exchange.matching_worker.runner import Worker

USDC = 10**6
WETH = 10**18


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


def expect_error(call: Callable[[], object], status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value
    return caught.value


def ids(page: dict) -> list[int]:
    return [row["id"] for row in page["results"]]
