"""Order intake is counted and timed by outcome: accepted, replayed, or the error code."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from exchange.client import ApiError

USDC = 10**6


def intake(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("clearway_order_intake_seconds_count", {"outcome": outcome}) or 0
    )


def test_placements_are_counted_by_outcome(trader) -> None:
    alice = trader(usdc=1_000 * USDC)
    accepted, short, invalid = (
        intake("accepted"),
        intake("insufficient_funds"),
        intake("validation_error"),
    )

    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    with pytest.raises(ApiError):
        alice.place_order("WETH-USDC", "buy", quantity="10", price="2000")  # 20,000 USDC
    with pytest.raises(ApiError):
        alice.request("POST", "orders", json={"market": "WETH-USDC"})

    assert intake("accepted") == accepted + 1
    assert intake("insufficient_funds") == short + 1
    assert intake("validation_error") == invalid + 1
