"""Helpers shared by the whole suite (fixtures live in conftest.py files): the local chain,
funding a trader through the ledger, the test database's URL for child processes, and workers
run as real processes so that a test can SIGKILL them."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from exchange.devstack.procs import VAR, ManagedProcess, free_port
from tests.waiting import DEFAULT_TIMEOUT, join_all

TEST_LOG_DIR = VAR / "log" / "tests"
DEMO_VAULT = "0x" + "5a" * 20


@dataclass
class Anvil:
    proc: ManagedProcess
    port: int
    chain_id: int

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_anvil(**options: object) -> Anvil:
    from exchange.devstack import services

    port = free_port()
    chain_id = int(options.pop("chain_id", 31337))  # type: ignore[arg-type]
    proc = services.start_anvil(port=port, chain_id=chain_id, log_dir=TEST_LOG_DIR, **options)
    return Anvil(proc=proc, port=port, chain_id=chain_id)


def database_url() -> str:
    """DATABASE_URL naming the test database (settings name it only once pytest made it)."""
    from django.db import connection

    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


def fund(address: str, symbol: str, amount: int) -> None:
    """Credit a trader as a confirmed deposit would (through the ledger service)."""
    from exchange.accounts.models import Account
    from exchange.ledger.services import credit_deposit
    from exchange.markets.models import Asset

    account = Account.objects.get(address=address)
    credit_deposit(account=account, asset=Asset.objects.get(symbol=symbol), amount=amount,
                   reference=f"test-funding:{address}:{symbol}:{amount}")  # fmt: skip


class WorkerProcess:
    """A worker as a real process (`python -m MODULE ARGS`), started again after each kill; run
    n logs to ``<log_dir>/<name>-<n>.log``. Every wait on it is bounded."""

    def __init__(
        self,
        name: str,
        module: str,
        *args: str,
        env: dict[str, str] | None = None,
        log_dir: Path = TEST_LOG_DIR,
    ) -> None:
        self.name, self.env, self.log_dir = name, env or {}, log_dir
        self.argv = [sys.executable, "-m", module, *args]
        self.count = 0
        self.proc: ManagedProcess | None = None

    def start(self) -> WorkerProcess:
        self.count += 1
        self.proc = ManagedProcess.start(
            f"{self.name}-{self.count}", self.argv, log_dir=self.log_dir, env=self.env
        )
        return self

    @property
    def popen(self):  # type: ignore[no-untyped-def]
        assert self.proc is not None, "not started"
        return self.proc.popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def application_name(self) -> str:
        """What a matching worker calls its database sessions (pg_stat_activity)."""
        return f"clearway-matching-{self.pid}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive

    def kill(self) -> None:
        """SIGKILL it (it must still be running: an early exit is a failure of its own)."""
        assert self.alive, f"{self.name} run {self.count} exited early: {self.log_tail()}"
        self._sigkill()

    def _sigkill(self) -> None:
        assert self.proc is not None
        self.proc.kill(signal.SIGKILL)
        self.popen.wait(DEFAULT_TIMEOUT)

    def stop(self) -> None:
        """Stop it if it runs (SIGTERM, then SIGKILL after a bound)."""
        if self.proc is not None:
            self.proc.stop()

    def output(self) -> str:
        assert self.proc is not None
        return self.proc.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.output()[-chars:] if self.proc is not None else "(never started)"


def run_together(work: list[Callable[[], str]], *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """Run each piece of work in its own thread, all released at once; their outcomes in order.
    An exception becomes the outcome ``"<Type>: <message>"`` so the test reports it; each
    thread closes its own database connection."""
    from django.db import connection

    barrier = threading.Barrier(len(work))
    outcomes = [""] * len(work)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            outcomes[index] = work[index]()
        except Exception as exc:
            outcomes[index] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"together-{i}") for i in range(len(work))
    ]
    for thread in threads:
        thread.start()
    join_all(threads, timeout=timeout)
    return outcomes
