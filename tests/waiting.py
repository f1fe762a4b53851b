"""The suite's one way to wait: every wait has a bound and names what it waited for.

A test never sleeps to let something happen; it waits for the condition, here, with a timeout
that is a bound (it fails a stuck test), never an assertion about speed.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# Long enough for a loaded 2-core CI machine; short enough that a stuck test fails well inside
# the per-test timeout (pyproject.toml), with a message instead of a stack dump.
DEFAULT_TIMEOUT = 60.0


class WaitTimeout(AssertionError):
    """What a bounded wait raises: an assertion failure naming what never happened."""


def wait_for(
    condition: Callable[[], T], what: str, *, timeout: float = DEFAULT_TIMEOUT, every: float = 0.05
) -> T:
    """Call ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"not within {timeout:g}s: {what}")
        time.sleep(every)


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    every: float = 0.1,
    what: str = "",
    in_thread: bool = True,
) -> Any:
    """The async ``wait_for``: polls the sync ``check`` (in a thread with its own database
    connection unless ``in_thread`` is false) until it returns something truthy."""
    from tests.async_db import orm

    async def probe() -> Any:
        return await orm(check) if in_thread else check()

    return await eventually_async(probe, timeout=timeout, every=every, what=what or check.__name__)


async def within(awaitable: Awaitable[T], *, what: str, timeout: float = DEFAULT_TIMEOUT) -> T:
    """Await with a bound: a workflow's result, a queue get, a task."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise WaitTimeout(f"not within {timeout:g}s: {what}") from None


def join_all(threads: Iterable[threading.Thread], *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Join threads against one deadline; a thread still alive after it fails the test."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise WaitTimeout(f"thread {thread.name} still running after {timeout:g}s")


class LineReader:
    """Reads a subprocess's text output on a thread, so waiting for a line has a bound even
    when the process prints nothing and never exits (a plain readline() would block)."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, marker: str, *, timeout: float) -> str:
        """Everything read until a line containing ``marker`` (inclusive)."""
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, remaining))
            except queue.Empty:
                line = None
                remaining = 0
            if line is None:
                output = "".join(self.seen[start:])
                why = "not printed" if remaining <= 0 else "output ended before it was printed"
                raise WaitTimeout(f"{marker!r} {why} within {timeout:g}s; output:\n{output}")
            self.seen.append(line)
            if marker in line:
                return "".join(self.seen[start:])

    def rest(self, *, timeout: float) -> str:
        """Everything not read yet, up to the end of the output (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
        return "".join(self.seen[start:])


async def eventually_async(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    every: float = 0.05,
    what: str,
) -> Any:
    """``eventually`` for a check that is itself a coroutine (a Temporal describe, a query)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise WaitTimeout(f"not within {timeout:g}s: {what}")
        await asyncio.sleep(every)
