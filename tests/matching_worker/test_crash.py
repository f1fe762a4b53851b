"""The worker process SIGKILLed again and again under a stream of commands: every command is
still applied exactly once, in order, and the database is what a clean run of the log gives."""

from __future__ import annotations

import random
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from exchange.markets.models import Market
from exchange.trading.models import Order
from tests.matching_worker.replay import assert_matches_clean_replay
from tests.matching_worker.stream import (
    CommandWriter,
    StreamGenerator,
    make_accounts,
    setup_markets,
)
from tests.matching_worker.support import applied, caught_up, lock_holders
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 12  # kills
BURST = 500  # commands written before each kill: 6,000 over the two markets
CHUNK = 50  # commands per transaction, like 50 concurrent requests


def short_lived_resting() -> bool:
    soon = timezone.now() + timedelta(hours=1)
    return Order.objects.filter(
        status__in=[Order.Status.ACCEPTED, Order.Status.OPEN, Order.Status.PARTIALLY_FILLED],
        expires_at__lte=soon,
    ).exists()


def test_sigkill_at_random_points_applies_every_command_exactly_once(start_worker) -> None:
    markets = setup_markets()
    accounts = make_accounts(30)
    # A few orders expire within seconds: the worker's timer sequences expiry commands too.
    generator = StreamGenerator(markets, accounts, seed=20_241_122, short_lived=0.03)
    writer = CommandWriter(markets)
    rng = random.Random(7)

    worker = start_worker("--batch-size", "200")
    written = kills = 0
    for _ in range(ROUNDS):
        before = sum(applied().values())
        for _ in range(BURST // CHUNK):
            writer.write(generator.take(CHUNK))
            written += CHUNK
        # Kill once this incarnation has committed something (so recovery is exercised every
        # round), at a random moment of draining the burst: reading, matching or committing.
        wait_for(lambda b=before: sum(applied().values()) > b, "the worker to apply commands")
        time.sleep(rng.uniform(0.0, 0.25))
        worker.kill()
        kills += 1
        worker = start_worker("--batch-size", "200")

    # The worker's timer sequences expiry commands of its own while short-lived orders (1-4 s)
    # are still resting: the log is final only once none is left and the last is applied.
    wait_for(
        lambda: caught_up() and not short_lived_resting(),
        "the last worker to drain the log and expire the short-lived orders",
        timeout=120,
    )
    # The previous incarnation may have drained the log already: SIGTERM the last one only
    # once it owns the markets, so the clean stop is tested on a worker that is running.
    wait_for(
        lambda: set(lock_holders().values()) == {worker.application_name},
        "the last worker to own both markets",
    )
    # SIGTERM stops it cleanly: it exits 0 of its own accord.
    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(timeout=60) == 0, worker.output()[-3000:]
    assert "matching worker stopped" in worker.output()

    assert kills >= 10 and written >= 5_000
    trades = assert_matches_clean_replay(list(Market.objects.filter(symbol__in=markets)))
    assert all(count > 100 for count in trades.values()), trades
