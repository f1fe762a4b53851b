"""Fixtures for the settlement integration tests (helpers live in support.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from exchange.devstack.proxy import Proxy


@pytest.fixture
def rpc_proxy(anvil) -> Iterator[Proxy]:  # type: ignore[no-untyped-def]
    proxy = Proxy(anvil.port)
    yield proxy
    proxy.close()


@pytest.fixture
def names() -> tuple[str, str]:
    """(task queue, workflow id prefix), unique to the test."""
    tag = uuid.uuid4().hex[:10]
    return f"custody-{tag}", f"t{tag}-"
