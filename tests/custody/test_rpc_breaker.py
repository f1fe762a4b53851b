"""The RPC circuit breaker: opens after K consecutive transport failures, refuses calls for the
cool-down, lets one trial through, and publishes its state as a Prometheus gauge."""

from __future__ import annotations

import pytest
import requests
from prometheus_client import REGISTRY

from exchange.chain import ContractRevert
from exchange.custody.errors import RpcUnavailable
from exchange.custody.rpc import CircuitBreaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("clearway_rpc_circuit_state", {"endpoint": name})


def fail(breaker: CircuitBreaker) -> None:
    with pytest.raises(RpcUnavailable), breaker.guard():
        raise requests.ConnectionError("refused")


def test_opens_after_consecutive_failures_and_recovers_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker("unit-a", threshold=3, cooldown=10, clock=clock)
    calls = []

    fail(breaker)
    fail(breaker)
    with breaker.guard():  # a success resets the count
        calls.append(1)
    fail(breaker)
    fail(breaker)
    assert breaker.state == State.CLOSED and gauge("unit-a") == 0
    fail(breaker)
    assert breaker.state == State.OPEN and gauge("unit-a") == 1

    with pytest.raises(RpcUnavailable, match="circuit open"), breaker.guard():
        calls.append(2)  # never runs
    clock.now += 9.9
    with pytest.raises(RpcUnavailable), breaker.guard():
        calls.append(3)
    assert calls == [1]

    clock.now += 0.2  # cool-down over: one trial
    fail(breaker)
    assert breaker.state == State.OPEN  # the trial failed: another cool-down, twice as long
    clock.now += 10.1
    with pytest.raises(RpcUnavailable, match="circuit open"), breaker.guard():
        calls.append(5)
    clock.now += 10
    with breaker.guard():
        assert breaker.state == State.HALF_OPEN and gauge("unit-a") == 2
        calls.append(4)
    assert breaker.state == State.CLOSED and gauge("unit-a") == 0
    assert calls == [1, 4]


def test_a_revert_is_the_node_answering_not_a_failure():
    breaker = CircuitBreaker("unit-b", threshold=1, cooldown=10, clock=Clock())
    with pytest.raises(ContractRevert), breaker.guard():
        raise ContractRevert("InsufficientBalance", {}, b"")
    assert breaker.state == State.CLOSED
    fail(breaker)
    assert breaker.state == State.OPEN


def test_only_one_trial_call_while_half_open():
    clock = Clock()
    breaker = CircuitBreaker("unit-c", threshold=1, cooldown=1, clock=clock)
    fail(breaker)
    clock.now += 2
    with breaker.guard(), pytest.raises(RpcUnavailable, match="trial"), breaker.guard():
        pass
    assert breaker.state == State.CLOSED


def test_cooldowns_grow_to_a_cap_with_jitter_and_a_success_starts_them_over():
    clock = Clock()
    breaker = CircuitBreaker("unit-d", threshold=1, cooldown=2, jitter=0.2, clock=clock)
    opened_for = []
    for _ in range(6):
        fail(breaker)  # opens (first failure), then each failed trial re-opens it
        opened_for.append(REGISTRY.get_sample_value(
            "clearway_rpc_circuit_cooldown_seconds", {"endpoint": "unit-d"}))  # fmt: skip
        clock.now += 16.1  # past any cool-down: the next call is a trial
    caps = [2, 4, 8, 16, 16, 16]  # doubling, at most 8x the configured cool-down
    assert all(0.8 * cap <= got <= cap for got, cap in zip(opened_for, caps, strict=True))
    with breaker.guard():
        pass  # the trial succeeds: closed, and the cool-downs start over
    fail(breaker)
    assert (
        REGISTRY.get_sample_value("clearway_rpc_circuit_cooldown_seconds", {"endpoint": "unit-d"})
        <= 2
    )
