"""Sending to Channels groups from sync code (workers, activities, services after commit).

Every publish in a process goes through one long-lived event loop thread. async_to_sync would
run each publish on a fresh event loop, and channels-redis opens a connection pool per loop: a
connection per publish, each dropped with its loop. Those connections' finalizers import a
module, and a finalizer that runs while Temporal's workflow sandbox is importing a workflow
module on the same thread breaks that import on Python 3.11 (temporalio/sdk-python#1833): the
worker fails the workflow task. One loop keeps one pool, reused, never garbage.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from channels.layers import get_channel_layer

SEND_TIMEOUT = 5.0
_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, daemon=True, name="channels-bus").start()
        return _loop


def group_send(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` and wait for Redis to take it; raises if it cannot."""
    layer = get_channel_layer()
    if layer is None:
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _publisher_loop())
    future.result(timeout=SEND_TIMEOUT)
