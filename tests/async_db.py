"""The database from async tests and from an in-process Temporal worker's activity threads,
without leaking thread connections (they would block the test database's flush and drop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def _closing(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any, **kwargs: Any) -> T:
        from django.db import connections

        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return run


class ClosingExecutor(ThreadPoolExecutor):
    """The worker's activity pool, closing each thread's database connection after each task."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return super().submit(_closing(fn), *args, **kwargs)


async def orm(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run database code from an async test (in a thread, with its own connection)."""
    return await asyncio.to_thread(_closing(fn), *args, **kwargs)
