"""Helpers for the matching worker's process tests: where the worker is in the command log, and
who holds each market's ownership lock."""

from __future__ import annotations

from django.db import close_old_connections, connection

from exchange.matching_worker.runner import LOCK_NAMESPACE
from exchange.trading.models import MarketCursor, MarketSequence


def applied() -> dict[int, int]:
    close_old_connections()
    return dict(MarketCursor.objects.values_list("market_id", "applied_sequence"))


def newest() -> dict[int, int]:
    return dict(MarketSequence.objects.values_list("market_id", "last_sequence"))


def caught_up() -> bool:
    done = applied()
    return all(done.get(market, 0) >= seq for market, seq in newest().items())


def lock_holders() -> dict[int, str]:
    """market id -> application_name of the session holding its ownership lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.objid, a.application_name FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [LOCK_NAMESPACE],
        )
        return {int(objid): name for objid, name in cursor.fetchall()}
