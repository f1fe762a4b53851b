"""Ownership: a standby worker takes a dead owner's markets; a worker outlives its database
connections. Both as real processes; the handover time is printed, never asserted (it is in
docs/BENCHMARKS.md, measured by bench/matching_worker.py)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from exchange.markets.models import Market
from tests.matching_worker.replay import assert_matches_clean_replay
from tests.matching_worker.stream import (
    CommandWriter,
    StreamGenerator,
    make_accounts,
    setup_markets,
)
from tests.matching_worker.support import caught_up, lock_holders
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def sessions(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def test_standby_takes_over_the_markets_of_a_killed_owner(start_worker) -> None:
    markets = setup_markets()
    market_ids = set(Market.objects.filter(symbol__in=markets).values_list("pk", flat=True))
    generator = StreamGenerator(markets, make_accounts(10), seed=3)
    writer = CommandWriter(markets)

    owner = start_worker()
    writer.write(generator.take(100))
    wait_for(caught_up, "the owner to apply the first commands")
    assert lock_holders() == dict.fromkeys(market_ids, owner.application_name)

    standby = start_worker(manage=True)  # `manage.py run_matching`: the same process
    wait_for(lambda: sessions(standby.application_name) == 1, "the standby to connect")
    writer.write(generator.take(100))
    wait_for(caught_up, "the owner to apply more")
    # Two workers, one owner: the standby only waits.
    assert lock_holders() == dict.fromkeys(market_ids, owner.application_name)
    assert "owning" not in standby.output()

    owner.kill()
    killed = time.monotonic()
    writer.write(generator.take(100))  # sequenced while no worker owns the markets
    wait_for(
        lambda: lock_holders() == dict.fromkeys(market_ids, standby.application_name),
        "the standby to take both markets",
        timeout=30,
    )
    locked = time.monotonic() - killed
    wait_for(caught_up, "the standby to apply what was sequenced after the kill", timeout=30)
    applied = time.monotonic() - killed
    print(
        f"handover: locks after {locked * 1000:.0f} ms, log applied after {applied * 1000:.0f} ms"
    )

    assert_matches_clean_replay(list(Market.objects.filter(symbol__in=markets)))


def test_worker_reconnects_after_its_database_connections_are_cut(start_worker) -> None:
    markets = setup_markets()
    market_ids = set(Market.objects.filter(symbol__in=markets).values_list("pk", flat=True))
    generator = StreamGenerator(markets, make_accounts(10), seed=4)
    writer = CommandWriter(markets)
    worker = start_worker()
    writer.write(generator.take(200))
    wait_for(caught_up, "the worker to apply the first commands")

    # What a database restart does to the worker: every session of it ends (the lock
    # connection with its advisory locks, Django's, the committer's and the publisher's).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 2
    writer.write(generator.take(200))

    wait_for(caught_up, "the worker to apply commands after reconnecting")
    wait_for(
        lambda: lock_holders() == dict.fromkeys(market_ids, worker.application_name),
        "the worker to own its markets again",
    )
    assert worker.popen.poll() is None
    assert "database connection lost" in worker.output()
    assert_matches_clean_replay(list(Market.objects.filter(symbol__in=markets)))
