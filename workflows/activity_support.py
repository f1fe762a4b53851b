"""Plumbing shared by every activity module: Django connection hygiene and heartbeats."""

from __future__ import annotations

import contextvars
import functools
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import Counter
from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError

F = TypeVar("F", bound=Callable[..., Any])

# Temporal retries a failed activity with its exponential RetryPolicy: count the retries, so an
# operator sees an RPC or database outage being ridden out before anything alerts.
ACTIVITY_RETRIES = Counter(
    "clearway_activity_retries_total",
    "Activity attempts after the first (Temporal's exponential retry policy at work).",
    ["activity"],
)


def django_activity(fn: F) -> F:
    """Treat an activity like a Django request: drop stale or broken connections before and
    after it (activity threads live long, and the ORM keeps one connection per thread)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.db import close_old_connections

        close_old_connections()
        if activity.in_activity() and activity.info().attempt > 1:
            ACTIVITY_RETRIES.labels(activity.info().activity_type).inc()
        try:
            return fn(*args, **kwargs)
        except FailureError as error:
            if not isinstance(error, ApplicationError):
                raise  # cancellation and the like: Temporal's own, passed on as they are
            raise compact_failure(error) from _details(error)
        except Exception as error:
            raise compact_failure(error) from _details(error)
        finally:
            close_old_connections()

    return wrapper  # type: ignore[return-value]


# The server keeps a retrying activity's last failure (message, stack traces and causes) only
# up to 4 KB; above that it shows "Failure exceeds size limit" instead. A web3 or database error
# with its traceback is larger, so the failure an activity raises is built small: a one-line
# message (what workflows read as ``cause.message``), and the details, clipped, in its cause.
MAX_MESSAGE_CHARS = 240
MAX_DETAILS_CHARS = 1_500
_DETAIL_FRAMES = 4


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 15] + " ...[clipped]"


def compact_failure(error: Exception) -> ApplicationError:
    """The failure to report for ``error``: its class name as the type (the workflows'
    ``non_retryable_error_types`` and ``cause.type`` checks keep working), its first line as
    the message, its retry flag kept."""
    text = error.message if isinstance(error, ApplicationError) else str(error)
    lines = text.strip().splitlines()
    message = _clip(lines[0] if lines else type(error).__name__, MAX_MESSAGE_CHARS)
    if isinstance(error, ApplicationError):
        return ApplicationError(
            message,
            *error.details,
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
        )
    return ApplicationError(message, type=type(error).__name__)


def _details(error: BaseException) -> ApplicationError:
    """The full message and the innermost frames, clipped, as a cause without a traceback of
    its own (never raised, so the converter adds no stack trace for it)."""
    frames = "".join(traceback.format_tb(error.__traceback__)[-_DETAIL_FRAMES:])
    parts = [_clip(f"{type(error).__name__}: {error}", 400), _clip(frames, 700)]
    inner = error.__cause__ or error.__context__
    while inner is not None and len(parts) < 5:
        parts.append(_clip(f"caused by {type(inner).__name__}: {inner}", 200))
        inner = inner.__cause__ or inner.__context__
    return ApplicationError(_clip("\n".join(parts), MAX_DETAILS_CHARS), type="FailureDetails")


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
