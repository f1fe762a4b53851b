"""`make run`'s engine, end to end on private ports: everything comes up and answers, Ctrl-C
stops every process it started, and a second run on busy ports says so clearly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_account import Account as EthAccount

from exchange.client import ClearwayClient
from exchange.devstack.procs import REPO, free_port, port_open
from tests.waiting import LineReader, wait_for


@pytest.fixture
def run_env(tmp_path) -> Iterator[dict[str, str]]:
    names = ("temporal", "ui", "chain", "api", "ws", "metrics", "temporal_metrics",
             "prometheus", "alertmanager", "node", "pg_exporter", "redis_exporter",
             "temporal_server_metrics")  # fmt: skip
    ports = {name: free_port() for name in names}
    database = f"clearway_run_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CLEARWAY_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "TEMPORAL_UI_URL": f"http://127.0.0.1:{ports['ui']}",
        "CHAIN_RPC_URL": f"http://127.0.0.1:{ports['chain']}",
        "API_PORT": str(ports["api"]),
        "WS_PORT": str(ports["ws"]),
        "MATCHING_METRICS_PORT": str(ports["metrics"]),
        "TEMPORAL_METRICS_PORT": str(ports["temporal_metrics"]),
        "PROMETHEUS_PORT": str(ports["prometheus"]),
        "ALERTMANAGER_PORT": str(ports["alertmanager"]),
        "NODE_EXPORTER_PORT": str(ports["node"]),
        "POSTGRES_EXPORTER_PORT": str(ports["pg_exporter"]),
        "REDIS_EXPORTER_PORT": str(ports["redis_exporter"]),
        "TEMPORAL_SERVER_METRICS_PORT": str(ports["temporal_server_metrics"]),
        "PYTHONUNBUFFERED": "1",
    }
    env["_PORTS"] = ",".join(str(p) for p in ports.values())
    yield env
    import psycopg

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "exchange.devstack", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # like a terminal: Ctrl-C goes to the whole foreground group
    )


def stop(proc: subprocess.Popen[str], reader: LineReader) -> str:
    """Ctrl-C the whole run and return what it printed from then on (every wait bounded)."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    return reader.rest(timeout=10)


def _confirmed_trades(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM trading_trade WHERE settlement_status = 'confirmed'"
        ).fetchone()
    return row[0]


def _jobs_up(prometheus: str) -> set[str]:
    try:
        targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
    except (requests.RequestException, ValueError, KeyError):
        return set()
    return {t["labels"]["job"] for t in targets["activeTargets"] if t["health"] == "up"}


def _get_text(url: str) -> str:
    try:
        return requests.get(url, timeout=5).text
    except requests.RequestException:
        return ""


def test_run_brings_everything_up_and_ctrl_c_stops_it(run_env: dict[str, str]) -> None:
    proc = start(run_env)
    reader = LineReader(proc.stdout)
    try:
        output = reader.until("Logs ", timeout=180)
        api = f"http://127.0.0.1:{run_env['API_PORT']}"
        for url in ("/api/v1/", "/api/docs/", "/admin/", "/metrics", "/healthz"):
            assert url.rstrip("/") in output
        ready = requests.get(f"{api}/readyz", timeout=15)
        assert ready.status_code == 200, ready.text
        assert ready.json()["failing"] == []
        assert requests.get(run_env["TEMPORAL_UI_URL"], timeout=10).status_code == 200
        assert requests.get(f"{api}/api/docs/", timeout=10).status_code == 200
        assert "django_http_requests" in requests.get(f"{api}/metrics", timeout=10).text
        assert requests.get(f"{api}/admin/login/", timeout=10).status_code == 200
        # Static files are collected at start-up and served by the app (WhiteNoise).
        assert (Path(run_env["CLEARWAY_VAR_DIR"]) / "static/admin/css/base.css").is_file()
        css = requests.get(f"{api}/static/admin/css/base.css", timeout=10)
        assert css.status_code == 200
        assert css.headers["Content-Type"].startswith("text/css")

        # Monitoring: Prometheus (its URL in the banner) scrapes every process and exporter on
        # the repo's config, with its alert rules loaded; Alertmanager is up.
        prometheus = f"http://127.0.0.1:{run_env['PROMETHEUS_PORT']}"
        alertmanager = f"http://127.0.0.1:{run_env['ALERTMANAGER_PORT']}"
        assert prometheus in output and alertmanager in output
        assert requests.get(f"{alertmanager}/-/ready", timeout=10).status_code == 200
        rules = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert "LedgerImbalance" in {r["name"] for g in rules for r in g["rules"]}
        jobs = {
            "clearway-api",
            "clearway-matching",
            "clearway-temporal-worker",
            "temporal-server",
            "node",
            "postgres",
            "redis",
            "prometheus",
            "alertmanager",
        }
        wait_for(lambda: _jobs_up(prometheus) == jobs, "every scrape job up", timeout=90, every=2)

        # The demo market is live and a wallet can sign in and sign against the deployment.
        trader = ClearwayClient(api, private_key=EthAccount.create().key)
        assert [m["symbol"] for m in trader.markets()] == ["WETH-USDC"]
        trader.login()
        assert trader.eip712()["domain"]["verifyingContract"].startswith("0x")
        assert trader.balances() == []
        # The matching worker claims the demo market (it may take a poll interval to start).
        owned = 'clearway_matching_owned{market="WETH-USDC"} 1.0'
        metrics_url = f"http://127.0.0.1:{run_env['MATCHING_METRICS_PORT']}/"
        wait_for(lambda: owned in _get_text(metrics_url), "the worker owns the demo market",
                 every=0.5)  # fmt: skip

        # It supervises: a SIGKILLed worker is started again after a backoff, and says so.
        pid_file = Path(run_env["CLEARWAY_VAR_DIR"]) / "run" / "matching-worker.pid"
        crashed = int(pid_file.read_text())
        os.kill(crashed, signal.SIGKILL)
        reader.until("matching-worker exited with code -9", timeout=30)
        reader.until("matching-worker restarted", timeout=30)
        assert int(pid_file.read_text()) != crashed
        wait_for(lambda: owned in _get_text(metrics_url), "the restarted worker owns the market",
                 every=0.5)  # fmt: skip

        # The demo market maker deposits for real, trades, and settlement confirms its trades
        # on the local chain.
        wait_for(lambda: _confirmed_trades(run_env["DATABASE_URL"]), "a confirmed demo trade",
                 timeout=180, every=2)  # fmt: skip
        book = requests.get(f"{api}/api/v1/markets/WETH-USDC/book", timeout=10).json()
        assert book["bids"] and book["asks"]

        # Running it again while the first is up must refuse clearly, touching nothing.
        second = subprocess.run(
            [sys.executable, "-m", "exchange.devstack", "run"],
            cwd=REPO, env=run_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1
        assert f"port {run_env['API_PORT']} (REST API) is already in use" in second.stdout
        assert requests.get(f"{api}/healthz", timeout=10).status_code == 200
    finally:
        rest = stop(proc, reader)
    assert proc.returncode == 0, rest
    assert "stopped everything this command started" in rest
    assert_nothing_left(run_env)


def assert_nothing_left(env: dict[str, str]) -> None:
    ports = [int(p) for p in env["_PORTS"].split(",")]
    assert [port for port in ports if port_open("127.0.0.1", port)] == []
    # Temporal and anvil name their state files (under the private var dir) on the command line.
    leftover = subprocess.run(
        ["pgrep", "-af", env["CLEARWAY_VAR_DIR"]], capture_output=True, text=True
    )
    assert leftover.stdout == ""


def test_ctrl_c_during_start_up_stops_at_once_and_leaves_nothing(run_env) -> None:
    proc = start(run_env)
    reader = LineReader(proc.stdout)
    try:
        # Temporal is up (started by this command) and the chain is starting.
        reader.until("[3/", timeout=120)
    finally:
        rest = stop(proc, reader)
    assert proc.returncode == 130, rest
    assert "interrupted during start-up" in rest
    assert "stopped everything this command started" in rest
    assert "Clearway is running" not in rest
    assert_nothing_left(run_env)


def test_a_busy_metrics_port_is_refused_by_name(run_env) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(run_env["TEMPORAL_METRICS_PORT"])))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "exchange.devstack", "run"],
            cwd=REPO, env=run_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1
    assert (
        f"port {run_env['TEMPORAL_METRICS_PORT']} (Temporal worker metrics) is already in use"
        in result.stdout
    )
    assert "TEMPORAL_METRICS_PORT=" in result.stdout
