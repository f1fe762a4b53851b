"""Dropped event batches are counted by reason: the publisher's backlog overflowing, or a
failed publish."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from exchange.matching_worker import publish
from exchange.matching_worker.publish import BackgroundPublisher, Batch


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("clearway_events_dropped_total", {"reason": reason}) or 0


def test_a_failed_publish_counts_as_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(url: str) -> object:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(publish, "_redis", broken)
    before = dropped("error")
    publish.publish_now(Batch(symbol="WETH-USDC", depth={}))
    assert dropped("error") == before + 1


def test_an_overflowing_backlog_drops_the_oldest_and_counts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publisher = BackgroundPublisher(max_pending=2)
    # Nothing gets published: the thread hands each batch to a publish that fails.
    monkeypatch.setattr(publish, "_store_depth_and_find_live", _fails)
    before = dropped("backlog")
    # Holding the publisher's lock keeps its thread from taking batches while we queue them.
    with publisher._lock:
        for _ in range(5):
            publisher.submit(Batch(symbol="WETH-USDC", depth={}))
    assert dropped("backlog") == before + 3
    publisher.close(timeout=10)


async def _fails(*args: object) -> None:
    raise ConnectionError("redis is down")
