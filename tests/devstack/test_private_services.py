"""`make run` and `make test` on a machine where nothing answers at DATABASE_URL / REDIS_URL:
they start a private PostgreSQL cluster (initdb under the var dir) and a private redis-server,
say so, and the next run finds them instead of starting more."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from exchange.devstack import services
from exchange.devstack.procs import StackError, free_port, port_open


def test_private_postgres_and_redis_start_when_none_answers(monkeypatch, capsys) -> None:
    # A 0700 folder, like a checkout in a mktemp dir: as root, the server runs as the postgres
    # user, who cannot enter it, so the cluster goes to a folder of its own under /var/tmp.
    monkeypatch.setattr(services, "VAR", Path(tempfile.mkdtemp(prefix="clearway-var-")))
    pg_port, redis_port = free_port(), free_port()
    database_url = f"postgres://postgres@127.0.0.1:{pg_port}/clearway_private"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    postgres = services.ensure_postgres(database_url)
    cache = services.ensure_redis(redis_url)
    try:
        assert postgres is not None and cache is not None
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("clearway_private",)
        assert redis.Redis.from_url(redis_url).ping()
        # The next run uses them and starts nothing.
        assert services.ensure_postgres(database_url) is None
        assert services.ensure_redis(redis_url) is None
    finally:
        for proc in (cache, postgres):
            if proc is not None:
                proc.stop()
        shutil.rmtree(services.private_cluster_dir(), ignore_errors=True)

    said = capsys.readouterr().out
    assert f"PostgreSQL: nothing at 127.0.0.1:{pg_port}; starting a private cluster" in said
    if services._unprivileged_prefix():
        assert "the postgres user cannot enter" in said
    assert f"Redis: nothing at 127.0.0.1:{redis_port}; starting a private redis-server" in said
    assert f"PostgreSQL: using the server already running at 127.0.0.1:{pg_port}" in said
    assert not port_open("127.0.0.1", pg_port) and not port_open("127.0.0.1", redis_port)


def test_an_initdb_failure_says_why(monkeypatch) -> None:
    if not services._unprivileged_prefix():
        pytest.skip("only root hands initdb to another user (this machine and CI run as root)")
    locked = Path(tempfile.mkdtemp(prefix="clearway-locked-"))  # 0700: postgres cannot enter
    with pytest.raises(StackError, match=r"initdb failed in .*clearway-locked-.*: .+"):
        services.start_postgres(data_dir=locked / "postgres", port=free_port())
