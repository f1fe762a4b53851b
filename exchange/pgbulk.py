"""Bulk statements on Django's connection: a server-side-binding cursor and array literals.

Django's psycopg backend binds parameters client-side, quoting every array element into the
SQL text; for a batch's arrays that quoting costs more than running the statements. A
server-side-binding cursor sends them as parameters. Arrays go in as text literals
(``'{1,2,3}'`` cast in the SQL, ``%s::bigint[]``): joining strings is several times cheaper
than psycopg adapting each element, and the matching worker and order placement write
thousands of them a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def cursor() -> Iterator[psycopg.Cursor]:
    """A server-side-binding cursor on Django's connection, in its current transaction.

    Errors still surface as django.db errors.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cur:
        yield cur


def ints(values: Iterable[int | None]) -> str:
    """An array literal of integers (any size: NUMERIC(78) amounts too); None is NULL."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def texts(values: Iterable[str | None]) -> str:
    """An array literal of strings, each quoted and escaped; None is NULL."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for v in values
        )
        + "}"
    )
