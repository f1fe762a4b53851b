"""Plumbing shared by every activity module: Django connection hygiene and heartbeats."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from temporalio import activity

F = TypeVar("F", bound=Callable[..., Any])


def django_activity(fn: F) -> F:
    """Treat an activity like a Django request: drop stale or broken connections before and
    after it (activity threads live long, and the ORM keeps one connection per thread)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.db import close_old_connections

        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return wrapper  # type: ignore[return-value]


@contextmanager
def heartbeating(every: float = 1.0) -> Iterator[None]:
    """Heartbeat from a side thread while the block runs (a chain call that blocks for seconds),
    so a worker that dies mid-call is noticed after the heartbeat timeout, not the whole
    start-to-close timeout."""
    stop = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(every):
            activity.heartbeat()

    thread = threading.Thread(target=context.run, args=(beat,), daemon=True, name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
