"""The local exchange: infrastructure, contracts, schema, demo data, then the app processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from exchange.devstack import monitoring, procs, services
from exchange.devstack.procs import (
    REPO,
    VAR,
    ManagedProcess,
    StackError,
    port_open,
    say,
    wait_until,
)
from exchange.devstack.supervise import Supervisor, write_pid

BIN = Path(sys.executable).parent
LOG_DIR = VAR / "log"
PID_DIR = VAR / "run"


def _settings():  # type: ignore[no-untyped-def]
    """Django settings are the one source of addresses and defaults; loading them connects to
    nothing, so they can be read before the services are up."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django
    from django.conf import settings

    django.setup()
    return settings


def _manage(*args: str) -> None:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO)
    if result.returncode:
        raise StackError(f"manage.py {' '.join(args)} failed (exit {result.returncode})")


class Interrupted(Exception):
    """Ctrl-C or SIGTERM before the stack was up."""


class Stack:
    """Processes started by this command, stopped in reverse order however we exit."""

    def __init__(self) -> None:
        self.procs: list[ManagedProcess] = []

    def keep(self, proc: ManagedProcess | None) -> None:
        if proc is not None:
            self.procs.append(proc)
            write_pid(PID_DIR, proc)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive:
                say(f"stopping {proc.name}")
            proc.stop()
            (PID_DIR / f"{proc.name}.pid").unlink(missing_ok=True)
        self.procs.clear()


def _database_url(settings) -> str:  # type: ignore[no-untyped-def]
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    if db["PASSWORD"]:
        database_url = (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    return database_url


def matching_metrics_port() -> int:
    return int(os.environ.get("MATCHING_METRICS_PORT", "9465"))


def ensure_base_services(stack: Stack, settings) -> None:  # type: ignore[no-untyped-def]
    database_url = _database_url(settings)
    stack.keep(services.ensure_postgres(database_url))
    stack.keep(services.ensure_redis(settings.REDIS_URL))


def _step(number: int, total: int, text: str) -> None:
    say(f"[{number}/{total}] {text}")


def run() -> int:
    settings = _settings()
    api_port = int(os.environ.get("API_PORT", "8000"))
    ws_port = int(os.environ.get("WS_PORT", "8001"))
    for port, what, variable in (
        (api_port, "REST API", "API_PORT"),
        (ws_port, "websockets", "WS_PORT"),
        (int(os.environ.get("MATCHING_METRICS_PORT", "9465")), "matching worker metrics",
         "MATCHING_METRICS_PORT"),
        (settings.TEMPORAL_METRICS_PORT, "Temporal worker metrics", "TEMPORAL_METRICS_PORT"),
    ):  # fmt: skip
        if not port:
            continue  # 0: that endpoint is off
        if port_open("127.0.0.1", port):
            raise StackError(
                f"port {port} ({what}) is already in use: is another `make run` still running? "
                f"Stop it, or choose another port with {variable}=..."
            )

    stack = Stack()
    stopping = False
    starting = True  # until the banner: a signal interrupts start-up where it is

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if starting:
            # Start-up can take minutes (chain, contracts, migrations): stop it where it is.
            raise Interrupted

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    total = 7
    try:
        _step(1, total, "PostgreSQL and Redis")
        ensure_base_services(stack, settings)
        _step(2, total, "Temporal dev server")
        ui_port = urlsplit(settings.TEMPORAL_UI_URL).port or 8233
        stack.keep(
            services.ensure_temporal(
                settings.TEMPORAL_ADDRESS, ui_port, monitoring.port_of("temporal-server")
            )
        )
        _step(3, total, "EVM chain (anvil)")
        stack.keep(services.ensure_anvil(settings.CHAIN_RPC_URL, settings.CHAIN_ID, block_time=1))
        _step(4, total, "contracts")
        deployment = deploy_contracts(settings)
        token_args = [
            f"--token={symbol}={address}" for symbol, address in deployment.tokens.items()
        ]
        _step(5, total, "database schema, static files and demo data")
        _manage("migrate", "--no-input", "-v", "0")
        # WhiteNoise serves what this gathers (admin CSS, Swagger UI): gunicorn serves no files.
        _manage("collectstatic", "--no-input", "-v", "0")
        _manage("bootstrap_demo", *token_args)
        _step(6, total, "web servers and workers")
        app_env = {
            # What the API signs orders against and where wallets sign in: this stack's own.
            "VAULT_ADDRESS": deployment.vault,
            "SIWE_DOMAIN": f"127.0.0.1:{api_port}",
            "SIWE_URI": f"http://127.0.0.1:{api_port}",
            "API_PORT": str(api_port),
        }
        backups = backup_processes(settings)
        for name, argv in app_processes(api_port, ws_port) + backups:
            proc = ManagedProcess.start(name, argv, log_dir=LOG_DIR, env=app_env)
            stack.keep(proc)
        wait_until(lambda: port_open("127.0.0.1", api_port), timeout=60, what="gunicorn")
        wait_until(lambda: port_open("127.0.0.1", ws_port), timeout=60, what="uvicorn")
        _step(7, total, "monitoring (Prometheus, Alertmanager, exporters)")
        for proc in monitoring.start_monitoring(
            settings, var_dir=VAR, log_dir=LOG_DIR, database_url=_database_url(settings),
            api_port=api_port, matching_port=matching_metrics_port(),
        ):  # fmt: skip
            stack.keep(proc)
        print_banner(settings, api_port, ws_port, ui_port, backups=bool(backups))
        starting = False
        return Supervisor(stack.procs, PID_DIR).run(lambda: stopping)
    except Interrupted:
        say("interrupted during start-up")
        return 130
    finally:
        starting = False  # a second Ctrl-C must not cut the clean-up short
        stack.stop()
        procs.stop_all()  # a child started just before a Ctrl-C, not handed to the stack yet
        say("stopped everything this command started")


def deploy_contracts(settings):  # type: ignore[no-untyped-def]
    """Deploy the contracts, or find them if this chain already has the current build."""
    from exchange.chain import deploy

    deployment = deploy.ensure_local_deployment(settings.CHAIN_RPC_URL, VAR / "deployment.json")
    say(f"contracts: {deployment.describe()}")
    return deployment


def app_processes(api_port: int, ws_port: int) -> list[tuple[str, list[str]]]:
    # Gunicorn's workers share their metrics through files (prometheus_client's multiprocess
    # mode): otherwise each scrape of /metrics would read whichever worker answered.
    multiproc = VAR / "prometheus-multiproc"
    shutil.rmtree(multiproc, ignore_errors=True)
    multiproc.mkdir(parents=True)
    processes = [
        ("gunicorn", [str(BIN / "gunicorn"), "exchange.wsgi", "-b", f"127.0.0.1:{api_port}",
                      *gunicorn_args(), "--access-logfile", "-",
                      "--env", f"PROMETHEUS_MULTIPROC_DIR={multiproc}"]),
        ("uvicorn", [str(BIN / "uvicorn"), "exchange.asgi:application", "--host", "127.0.0.1",
                     "--port", str(ws_port)]),
    ]  # fmt: skip
    for name in ("matching", "temporal"):
        if (REPO / "workers" / f"{name}.py").exists():
            processes.append((f"{name}-worker", [sys.executable, "-m", f"workers.{name}"]))
    if os.environ.get("DEMO_MARKET_MAKER", "1") != "0":
        processes.append(("demo-market-maker", [sys.executable, "-m", "exchange.devstack.demo"]))
    return processes


def gunicorn_args() -> list[str]:
    """How the REST API is served (docs/BENCHMARKS.md has the figures behind each choice).

    - gthread, not sync: gunicorn's sync worker cannot keep a connection alive, and since 27.0 it
      closes each one gracefully, lingering up to 2 s for the client's FIN, so a client slow to
      close holds the worker. Threads also overlap one request's database waits with another's
      Python.
    - Two processes for two cores (GUNICORN_WORKERS), a few threads each (GUNICORN_THREADS).
    - Keep-alive longer than a client pool's idle time: a connection the server closes while the
      client is sending on it fails that request (k6 saw EOF and resets with 5 s).
    - DEBUG off in the API process unless API_DEBUG=1: DEBUG wraps every query in Django's debug
      cursor (timing, SQL kept in memory). The API's errors are JSON bodies either way and
      tracebacks still go to var/log/gunicorn.log.
    """
    return [
        "--worker-class", os.environ.get("GUNICORN_WORKER_CLASS", "gthread"),
        "-w", os.environ.get("GUNICORN_WORKERS", "2"),
        "--threads", os.environ.get("GUNICORN_THREADS", "4"),
        "--keep-alive", "75",
        "--env", f"DEBUG={os.environ.get('API_DEBUG', '0')}",
    ]  # fmt: skip


def backup_processes(settings) -> list[tuple[str, list[str]]]:  # type: ignore[no-untyped-def]
    """WAL streaming and scheduled base backups, when PostgreSQL lets us replicate (a private
    cluster does; Debian's default one refuses until its pg_hba.conf allows it)."""
    from exchange.ops.backups import Layout, Server, replication_allowed, wal_receiver_argv

    db = settings.DATABASES["default"]
    server = Server(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432), db["USER"], db["PASSWORD"])
    if not replication_allowed(server):
        say(f"backups: off: PostgreSQL at {server.host}:{server.port} refuses replication "
            "connections (docs/OPERATIONS.md, Backups)")  # fmt: skip
        return []
    every = os.environ.get("BACKUP_EVERY_SECONDS", "3600")
    return [
        ("wal-stream", wal_receiver_argv(server, Layout(Path(settings.BACKUP_DIR)))),
        ("base-backups", [sys.executable, "manage.py", "backup", "--every", every]),
    ]


def print_banner(  # type: ignore[no-untyped-def]
    settings, api_port: int, ws_port: int, ui_port: int, *, backups: bool = False
) -> None:
    api = f"http://127.0.0.1:{api_port}"
    user = os.environ.get("DEMO_ADMIN_USER", "admin")
    password = os.environ.get("DEMO_ADMIN_PASSWORD", "clearway-admin")
    lines = [
        "Clearway is running. Ctrl-C stops everything this command started.",
        "",
        f"  REST API       {api}/api/v1/",
        f"  API docs       {api}/api/docs/   (schema: {api}/api/schema/)",
        f"  Admin          {api}/admin/      user {user} / password {password}",
        f"  Websockets     ws://127.0.0.1:{ws_port}/ws/v1/",
        f"  Temporal UI    http://127.0.0.1:{ui_port}/",
        f"  Metrics        {api}/metrics",
        f"  Prometheus     http://127.0.0.1:{monitoring.port_of('prometheus')}/   "
        f"(alerts: /alerts)",
        f"  Alertmanager   http://127.0.0.1:{monitoring.port_of('alertmanager')}/   "
        f"(in Clearway: {api}/api/v1/alerts)",
        f"  Health         {api}/healthz   readiness {api}/readyz",
        f"  Chain RPC      {settings.CHAIN_RPC_URL} (chain id {settings.CHAIN_ID})",
        f"  Logs           {LOG_DIR}/",
        f"  Backups        {settings.BACKUP_DIR} (WAL streamed, base backup hourly; "
        "make restore-drill)"
        if backups
        else "  Backups        off (see above)",
    ]
    width = max(len(line) for line in lines) + 4
    print("=" * width)
    for line in lines:
        print(f"  {line}")
    print("=" * width, flush=True)


def test(pytest_args: list[str]) -> int:
    settings = _settings()
    stack = Stack()
    try:
        ensure_base_services(stack, settings)
        say("running the test suite")
        env = {**os.environ, "CLEARWAY_ENV": "test"}
        return subprocess.run(
            [sys.executable, "-m", "pytest", *pytest_args], cwd=REPO, env=env
        ).returncode
    finally:
        stack.stop()
