from __future__ import annotations

import pytest

from tests.realtime.support import depth_store, sockets, worker  # noqa: F401


@pytest.fixture(autouse=True)
def _isolated(channel_layer, depth_store) -> None:  # noqa: F811
    """Every websocket test runs on the real channels-redis layer under its own prefix."""
