"""Exponential backoff with jitter: the one implementation behind every "wait longer after each
failure" in Clearway's own code (the chain RPC circuit breaker's cool-down, `make run`'s
restarts). Temporal retries activities with its own exponential RetryPolicy.

Pure: no clock, no sleep; the caller asks for the next delay and waits it out itself."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial * factor**n``, capped at ``maximum``, for the n-th consecutive failure
    (n from 0). With ``jitter`` j, each delay is drawn from [(1 - j) * d, d], so many clients that
    failed together do not retry together; the cap holds either way."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.0
    failures: int = 0
    draw: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError("need 0 < initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction from 0 to 1")

    def next_delay(self) -> float:
        """The delay before the next attempt, counting one more failure."""
        delay = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return delay * (1 - self.jitter * self.draw())

    def reset(self) -> None:
        """A success: the next failure starts from ``initial`` again."""
        self.failures = 0
