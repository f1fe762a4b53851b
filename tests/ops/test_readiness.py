"""/readyz against real, private dependencies: stop each one and the probe must name it.

The app runs under gunicorn in its own process with the private services' addresses in its
environment, exactly as it runs in production; nothing is mocked.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from exchange.devstack import services
from exchange.devstack.procs import REPO, ManagedProcess, free_port, port_open, wait_until

LOG_DIR = REPO / "var" / "log" / "tests"


@dataclass
class PrivateStack:
    """Each dependency on its own port, with a way to start it again after a test stops it."""

    starters: dict[str, Callable[[], ManagedProcess]]
    ports: dict[str, int]
    procs: dict[str, ManagedProcess] = field(default_factory=dict)
    base_url: str = ""

    def start(self, name: str) -> None:
        self.procs[name] = self.starters[name]()

    def stop(self, name: str) -> None:
        self.procs.pop(name).stop()

    def readyz(self) -> requests.Response:
        return requests.get(f"{self.base_url}/readyz", timeout=15)


@pytest.fixture(scope="module")
def stack() -> Iterator[PrivateStack]:
    ports = {name: free_port() for name in ("postgres", "redis", "temporal", "chain", "http")}
    pg_dir = Path(tempfile.mkdtemp(prefix="clearway-readyz-pg-"))
    stack = PrivateStack(
        starters={
            "postgres": lambda: services.start_postgres(
                data_dir=pg_dir, port=ports["postgres"], log_dir=LOG_DIR
            ),
            "redis": lambda: services.start_redis(port=ports["redis"], log_dir=LOG_DIR),
            "temporal": lambda: services.start_temporal(
                port=ports["temporal"], ui_port=None, log_dir=LOG_DIR
            ),
            "chain": lambda: services.start_anvil(port=ports["chain"], log_dir=LOG_DIR),
        },
        ports=ports,
    )
    app = None
    try:
        for name in stack.starters:
            stack.start(name)
        database_url = f"postgres://postgres@127.0.0.1:{ports['postgres']}/clearway"
        services.create_database(database_url)
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "CHAIN_RPC_URL": f"http://127.0.0.1:{ports['chain']}",
            "CHAIN_ID": "31337",
            "DJANGO_SETTINGS_MODULE": "exchange.settings",
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        app = ManagedProcess.start(
            "readyz-gunicorn",
            [gunicorn, "exchange.wsgi", "-b", f"127.0.0.1:{ports['http']}", "-w", "1"],
            log_dir=LOG_DIR,
            env=env,
        )
        wait_until(
            lambda: port_open("127.0.0.1", ports["http"]), timeout=30, what="gunicorn", proc=app
        )
        stack.base_url = f"http://127.0.0.1:{ports['http']}"
        yield stack
    finally:
        if app is not None:
            app.stop()
        for proc in stack.procs.values():
            proc.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_ready_when_every_dependency_answers(stack: PrivateStack) -> None:
    response = stack.readyz()
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "temporal": True,
        "chain": True,
    }


@pytest.mark.parametrize("dependency", ["postgres", "redis", "temporal", "chain"])
def test_stopped_dependency_makes_readyz_503_naming_it(
    stack: PrivateStack, dependency: str
) -> None:
    stack.stop(dependency)
    try:
        response = stack.readyz()
        body = response.json()
        assert response.status_code == 503
        assert body["status"] == "unavailable"
        assert body["failing"] == [dependency]
        assert body["checks"][dependency]["ok"] is False
        assert body["checks"][dependency]["error"]
    finally:
        stack.start(dependency)
    assert stack.readyz().status_code == 200


def test_healthz_answers_without_dependencies(stack: PrivateStack) -> None:
    response = requests.get(f"{stack.base_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_chain_with_another_chain_id_is_not_ready(stack: PrivateStack) -> None:
    stack.stop("chain")
    wrong = services.start_anvil(port=stack.ports["chain"], chain_id=1, log_dir=LOG_DIR)
    try:
        body = stack.readyz().json()
        assert body["failing"] == ["chain"]
        assert "does not match CHAIN_ID" in body["checks"]["chain"]["error"]
    finally:
        wrong.stop()
        stack.start("chain")


def test_readiness_never_depends_on_the_monitoring() -> None:
    """Prometheus or Alertmanager being down is a blind spot, never an outage of the exchange."""
    from exchange.ops.readiness import CHECKS

    assert set(CHECKS) == {"postgres", "redis", "temporal", "chain"}
