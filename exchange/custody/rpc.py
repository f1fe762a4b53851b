"""A circuit breaker around the chain RPC, shared by every activity of the worker process.

When the node is down, each activity attempt would otherwise wait out connection timeouts and
Temporal would keep retrying them all against it. After ``threshold`` consecutive transport
failures the breaker opens: calls fail at once with RpcUnavailable (a retryable error, so the
workflows back off and try again) until ``cooldown`` has passed. Then one trial call goes through
(half-open); its success closes the breaker, its failure opens it for another cool-down, twice
as long each time up to 8x, with jitter (exchange.backoff) so the processes of a fleet do not
probe a recovering node in step.

Only transport failures count (refused connections, timeouts, HTTP errors): a revert or a JSON-RPC
error is the node answering, which is what a healthy node does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum

import requests
from web3.exceptions import MultipleFailedRequests, ProviderConnectionError, TooManyRequests

from exchange.backoff import Backoff
from exchange.custody import metrics
from exchange.custody.errors import RpcUnavailable

log = logging.getLogger(__name__)

TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException,
    ConnectionError,
    TimeoutError,
    ProviderConnectionError,
    MultipleFailedRequests,
    TooManyRequests,
)


class State(IntEnum):
    # The gauge's values.
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown: float,
        jitter: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._backoff = Backoff(initial=cooldown, maximum=cooldown * 8, jitter=jitter)
        self._open_for = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._state = State.CLOSED
        self._publish()

    @property
    def state(self) -> State:
        with self._lock:
            return self._state

    def configure(self, *, threshold: int, cooldown: float, jitter: float = 0.0) -> None:
        with self._lock:
            self.threshold, self.cooldown = threshold, cooldown
            if (cooldown, jitter) != (self._backoff.initial, self._backoff.jitter):
                self._backoff = Backoff(initial=cooldown, maximum=cooldown * 8, jitter=jitter)

    def before_call(self) -> None:
        """Raise RpcUnavailable if calls are not allowed now."""
        with self._lock:
            if self._state == State.CLOSED:
                return
            if self._state == State.OPEN:
                remaining = self._opened_at + self._open_for - self._clock()
                if remaining > 0:
                    metrics.RPC_REJECTED.labels(self.name).inc()
                    raise RpcUnavailable(
                        f"chain RPC circuit open after {self.threshold} consecutive failures; "
                        f"retrying in {remaining:.1f}s"
                    )
                self._state = State.HALF_OPEN
                self._trial_running = False
                self._publish()
            # Half-open: exactly one trial call at a time.
            if self._trial_running:
                metrics.RPC_REJECTED.labels(self.name).inc()
                raise RpcUnavailable("chain RPC circuit half-open: a trial call is running")
            self._trial_running = True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_running = False
            self._backoff.reset()
            if self._state != State.CLOSED:
                log.info("rpc: %s answers again; circuit closed", self.name)
                self._state = State.CLOSED
                self._publish()

    def record_failure(self, exc: BaseException) -> None:
        metrics.RPC_FAILURES.labels(self.name).inc()
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state == State.HALF_OPEN or (
                self._state == State.CLOSED and self._failures >= self.threshold
            ):
                self._state = State.OPEN
                self._opened_at = self._clock()
                self._open_for = self._backoff.next_delay()
                metrics.RPC_COOLDOWN.labels(self.name).set(self._open_for)
                self._publish()
                log.error(
                    "rpc: %s failed %d times in a row (%s); circuit open for %.1fs",
                    self.name,
                    self._failures,
                    exc,
                    self._open_for,
                )

    def release(self) -> None:
        """A call that ended without saying anything about the transport (e.g. a revert)."""
        with self._lock:
            if self._state == State.HALF_OPEN:
                # The node answered: that is a successful trial.
                self._state = State.CLOSED
                self._failures = 0
                self._backoff.reset()
                self._publish()
            self._trial_running = False
            self._failures = 0

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run a block of RPC calls through the breaker."""
        self.before_call()
        try:
            yield
        except TRANSPORT_ERRORS as exc:
            self.record_failure(exc)
            raise RpcUnavailable(f"chain RPC failed: {exc}") from exc
        except BaseException:
            self.release()
            raise
        else:
            self.record_success()

    def _publish(self) -> None:
        metrics.RPC_CIRCUIT_STATE.labels(self.name).set(int(self._state))
