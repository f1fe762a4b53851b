"""Chaos soak: the whole local stack under a mixed load while processes die and the chain
misbehaves, then the system's invariants.

    .venv/bin/python bench/chaos.py --seed 7 --minutes 10      # make chaos
    .venv/bin/python bench/chaos.py --seed 7 --minutes 2       # make chaos-short

The stack is `python -m exchange.devstack run` (what `make run` starts, supervising its
children) on private ports and a private CLEARWAY_VAR_DIR, over a private PostgreSQL cluster and
a private redis-server started here (so restarting them touches nobody else's), and an anvil
chain reached through a TCP proxy that can cut the RPC. Four funded wallets (real vault
deposits) place, cancel and cross signed orders through the REST API; two websocket clients
follow the market stream by docs/API.md's gap rule and checksum.

Faults come from a schedule drawn from ``--seed`` (a failing seed replays the same schedule):
SIGKILL the matching worker, the Temporal worker or a gunicorn worker; restart PostgreSQL or
Redis; cut the chain RPC for 10-30 s; ``anvil_reorg`` at depth 1..CONFIRMATION_DEPTH+2. After each,
the recovery time: for process and database faults until a probe order is accepted and applied
by the matching worker; for chain faults (and the Temporal worker) until every trade that
existed when the fault ended is confirmed on chain. Then the load stops, settlement drains
(bounded) and the invariants are checked. The run prints the tables and exits 1 on any
violation (2 when the stack could not start).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KINDS = (
    "kill_matching",
    "kill_temporal",
    "kill_gunicorn",
    "restart_postgres",
    "restart_redis",
    "cut_rpc",
    "reorg",
)
# Recovery measured by settlement catching up rather than by a probe order.
CHAIN_KINDS = {"kill_temporal", "cut_rpc", "reorg"}
# anvil's dev mnemonic: 0-2 are the deployer, operator and fee account, 5-6 the demo's
# market maker (off here); these are unlocked and funded with ether too.
TRADER_KEYS = (3, 4, 7, 8)
PROBE_KEY = 9


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the load started
    kind: str
    seconds: int = 0  # cut_rpc: how long
    depth: int = 0  # reorg
    pick: int = 0  # kill_gunicorn: which worker


# Faults per 10 minutes of load: issue #17's counts for the long run, scaled by --minutes
# (every kind at least once).
PER_10_MINUTES = {
    "kill_matching": 20,
    "kill_temporal": 20,
    "kill_gunicorn": 5,
    "restart_postgres": 3,
    "restart_redis": 3,
    "cut_rpc": 3,
    "reorg": 5,
}


def fault_schedule(seed: int, minutes: float, confirmation_depth: int) -> list[Fault]:
    """The kinds in a seeded order, evenly spread (with jitter) over the first 85% of the load,
    so the last faults recover while the load still runs."""
    rng = random.Random(seed)
    kinds = [
        kind for kind in KINDS for _ in range(max(1, round(PER_10_MINUTES[kind] * minutes / 10)))
    ]
    rng.shuffle(kinds)
    spacing = minutes * 60 * 0.85 / len(kinds)
    return [
        Fault(
            at=round(3 + spacing * i + rng.uniform(0, spacing * 0.5), 1),
            kind=kind,
            seconds=rng.randint(10, 30) if kind == "cut_rpc" else 0,
            depth=rng.randint(1, confirmation_depth + 2) if kind == "reorg" else 0,
            pick=rng.randrange(1 << 16),
        )
        for i, kind in enumerate(kinds)
    ]


@dataclass
class Outcome:
    fault: Fault
    recovery: float | None  # None: not recovered within the bound
    note: str = ""


@dataclass
class PrivateStack:
    """The chaos stack's processes and addresses; everything under ``var``."""

    var: Path
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from exchange.devstack.procs import free_port

        names = ("pg", "redis", "anvil", "temporal", "ui", "api", "ws", "metrics", "tmetrics")
        self.ports = {name: free_port() for name in names}
        self.database_url = f"postgres://postgres@127.0.0.1:{self.ports['pg']}/clearway_chaos"
        self.anvil_url = f"http://127.0.0.1:{self.ports['anvil']}"
        self.api = f"http://127.0.0.1:{self.ports['api']}"
        self.pg = self.redis = self.anvil = self.proxy = self.run = None  # type: ignore[assignment]

    def start(self, timeout: float) -> None:
        from exchange.devstack import services
        from exchange.devstack.proxy import Proxy

        log_dir = self.var / "log"
        self.pg = self._start_postgres()
        services.create_database(self.database_url)
        self.redis = services.start_redis(port=self.ports["redis"], log_dir=log_dir)
        self.anvil = services.start_anvil(port=self.ports["anvil"], block_time=1, log_dir=log_dir)
        self.proxy = Proxy(self.ports["anvil"])
        self.env = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.ports['redis']}/0",
            "CHAIN_RPC_URL": self.proxy.url,  # the app reaches the chain only through the proxy
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.ports['temporal']}",
            "TEMPORAL_UI_URL": f"http://127.0.0.1:{self.ports['ui']}",
            "API_PORT": str(self.ports["api"]),
            "WS_PORT": str(self.ports["ws"]),
            "MATCHING_METRICS_PORT": str(self.ports["metrics"]),
            "TEMPORAL_METRICS_PORT": str(self.ports["tmetrics"]),
            "DEMO_MARKET_MAKER": "0",
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(self.env)  # the checks' Django settings read the same
        self.run = subprocess.Popen(
            [sys.executable, "-m", "exchange.devstack", "run"],
            cwd=REPO, env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        ready = threading.Event()
        threading.Thread(target=self._read, args=(ready,), daemon=True).start()
        if not ready.wait(timeout) or self.run.poll() is not None:
            tail = "\n".join(self.lines[-15:])
            raise RuntimeError(f"the stack was not up after {timeout:.0f}s:\n{tail}")

    def _start_postgres(self):  # type: ignore[no-untyped-def]
        from exchange.devstack import services

        return services.start_postgres(
            data_dir=self.var / "postgres", port=self.ports["pg"], log_dir=self.var / "log"
        )

    def _read(self, ready: threading.Event) -> None:
        with open(self.var / "log" / "stack.log", "a") as log:
            for line in self.run.stdout:  # type: ignore[union-attr]
                self.lines.append(line.rstrip())
                log.write(line)
                log.flush()
                if "Clearway is running" in line:
                    ready.set()
        ready.set()  # exited: start() reports the tail

    def pid(self, name: str) -> int:
        return int((self.var / "run" / f"{name}.pid").read_text())

    def restart_postgres(self) -> None:
        self.pg.kill(signal.SIGINT)  # fast shutdown: sessions are cut, as in a crash/failover
        try:
            self.pg.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.pg.kill(signal.SIGKILL)
            self.pg.popen.wait(10)
        self.pg.stop()
        # Its children may outlive the runuser wrapper: the port and the lock file must be free
        # before a new postmaster starts, or the old one would be taken for it.
        from exchange.devstack.procs import port_open, wait_until

        wait_until(
            lambda: (
                not port_open("127.0.0.1", self.ports["pg"])
                and not (self.var / "postgres" / "postmaster.pid").exists()
            ),
            timeout=60,
            what="PostgreSQL to stop",
        )
        self.pg = self._start_postgres()

    def restart_redis(self) -> None:
        from exchange.devstack import services

        self.redis.stop()
        self.redis = services.start_redis(port=self.ports["redis"], log_dir=self.var / "log")

    def stop(self) -> None:
        if self.run is not None and self.run.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.run.pid, signal.SIGINT)
            try:
                self.run.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.run.pid, signal.SIGKILL)
                self.run.wait(10)
        # Anything the run command could not stop (it was killed): its pid files say who.
        for pid_file in (self.var / "run").glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        if self.proxy is not None:
            self.proxy.close()
        for proc in (self.anvil, self.redis, self.pg):
            if proc is not None:
                proc.stop()


def gunicorn_workers(master: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                children.append(int(stat.parent.name))
    return sorted(children)


def always() -> bool:
    return True


def supervisor_replaced(stack: PrivateStack, name: str, victim: int) -> Callable[[], bool]:
    """The supervisor started a new one (after its restart backoff)."""

    def replaced() -> bool:
        try:
            pid = stack.pid(name)
        except (OSError, ValueError):  # the supervisor is writing it
            return False
        return pid != victim and Path(f"/proc/{pid}").exists()

    return replaced


def gunicorn_replaced(master: int, victim: int, count: int) -> Callable[[], bool]:
    """The gunicorn master forked a worker in place of the killed one."""
    return lambda: len([w for w in gunicorn_workers(master) if w != victim]) >= count


def max_trade_id(database_url: str) -> int | None:
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            return conn.execute("SELECT coalesce(max(id), 0) FROM trading_trade").fetchone()[0]
    except psycopg.Error:
        return None


def settled_up_to(database_url: str, trade_id: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT count(*) FROM trading_trade"
                " WHERE id <= %s AND settlement_status <> 'confirmed'",
                (trade_id,),
            ).fetchone()
        return row[0] == 0
    except psycopg.Error:
        return False


def measure(ready: Callable[[], bool], bound: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if ready():
            return time.monotonic() - started
        time.sleep(0.5)
    return None


class Injector:
    def __init__(self, stack: PrivateStack, probe_client, bound: float) -> None:  # type: ignore[no-untyped-def]
        self.stack = stack
        self.probe_client = probe_client
        self.bound = bound
        self.drifts: list[str] = []  # ledger_check failures while the load runs
        self.probe_lock = threading.Lock()
        self.load_started = time.monotonic()

    def inject(self, fault: Fault) -> Outcome:
        from exchange.devstack.procs import say

        stack, note = self.stack, ""
        late = time.monotonic() - self.load_started - fault.at  # queued behind its kind
        say(f"chaos: t+{fault.at:.0f}s{f' (+{late:.0f}s late)' if late > 2 else ''} "
            f"{fault.kind} {self._params(fault)}")  # fmt: skip
        replaced: Callable[[], bool] = always
        if fault.kind in ("kill_matching", "kill_temporal"):
            name = "matching-worker" if fault.kind == "kill_matching" else "temporal-worker"
            victim = stack.pid(name)
            os.kill(victim, signal.SIGKILL)
            # Recovered only once the supervisor started a new one (its restart backoff).
            replaced = supervisor_replaced(stack, name, victim)
        elif fault.kind == "kill_gunicorn":
            master = stack.pid("gunicorn")
            workers = gunicorn_workers(master)
            if not workers:
                return Outcome(fault, None, "no gunicorn worker found")
            victim = workers[fault.pick % len(workers)]
            os.kill(victim, signal.SIGKILL)
            note = f"worker {victim} of {len(workers)}"
            replaced = gunicorn_replaced(master, victim, len(workers))
        elif fault.kind == "restart_postgres":
            stack.restart_postgres()
        elif fault.kind == "restart_redis":
            stack.restart_redis()
        elif fault.kind == "cut_rpc":
            stack.proxy.block()
            time.sleep(fault.seconds)
            stack.proxy.unblock()
        elif fault.kind == "reorg":
            from web3 import Web3

            w3 = Web3(Web3.HTTPProvider(stack.anvil_url, request_kwargs={"timeout": 10}))
            before = w3.eth.block_number
            answer = w3.provider.make_request("anvil_reorg", [fault.depth, []])
            if "error" in answer:
                return Outcome(fault, None, f"anvil_reorg refused: {answer['error']}")
            note = f"at block {before}"
        if fault.kind in CHAIN_KINDS:
            last = None
            while last is None:
                last = max_trade_id(stack.database_url)
            recovery = measure(
                lambda: replaced() and settled_up_to(stack.database_url, last), self.bound
            )
        else:
            from bench.chaos_load import probe

            def probed() -> bool:
                if not replaced():
                    return False
                with self.probe_lock:
                    return probe(self.probe_client)

            recovery = measure(probed, self.bound)
        say(f"chaos: {fault.kind} recovered in {recovery:.1f}s" if recovery is not None
            else f"chaos: {fault.kind} NOT recovered within {self.bound:.0f}s")  # fmt: skip
        drift = ledger_drift()
        if drift:
            say(f"chaos: ledger_check after {fault.kind}: {drift}")
            self.drifts.append(f"after {fault.kind}@{fault.at:.0f}s: {drift}")
        return Outcome(fault, recovery, note)

    @staticmethod
    def _params(fault: Fault) -> str:
        if fault.kind == "cut_rpc":
            return f"for {fault.seconds}s"
        if fault.kind == "reorg":
            return f"depth {fault.depth}"
        return ""


def ledger_drift() -> str | None:
    """ledger_check now, under load (it reads one REPEATABLE READ snapshot, so commits made
    meanwhile raise no false alarm): None when consistent, else what drifted."""
    import io

    from django.core.management import CommandError, call_command
    from django.db import DatabaseError, close_old_connections

    for _ in range(3):  # PostgreSQL may have just restarted under this connection
        close_old_connections()
        try:
            call_command("ledger_check", stdout=io.StringIO())
            return None
        except CommandError as error:
            return str(error)
        except DatabaseError:
            from django.db import connection

            connection.close()
            time.sleep(1)
    return None  # could not read: the end-of-run check still runs


def drain(stack: PrivateStack, bound: float) -> str:
    """Wait (bounded) until the matching worker applied the whole log and every trade is
    confirmed on chain."""
    from django.db import close_old_connections

    from exchange.trading.models import MarketCursor, MarketSequence, Trade

    def done() -> bool:
        close_old_connections()
        try:
            applied = dict(MarketCursor.objects.values_list("market_id", "applied_sequence"))
            newest = dict(MarketSequence.objects.values_list("market_id", "last_sequence"))
            caught_up = all(applied.get(m, 0) >= s for m, s in newest.items())
            return caught_up and not Trade.objects.exclude(settlement_status="confirmed").exists()
        except Exception:
            return False

    took = measure(done, bound)
    return f"drained in {took:.0f}s" if took is not None else f"NOT drained after {bound:.0f}s"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def fault_rows(outcomes: list[Outcome]) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        mine = [o for o in outcomes if o.fault.kind == kind]
        times = [o.recovery for o in mine if o.recovery is not None]
        failed = len(mine) - len(times)
        median = f"{statistics.median(times):.1f}s" if times else "-"
        worst = f"{max(times):.1f}s" if times else "-"
        extra = f" ({failed} not recovered)" if failed else ""
        rows.append([kind, str(len(mine)), median, worst + extra])
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--recovery-bound",
        type=float,
        default=120.0,
        help="seconds a fault may take to recover before it counts as a failure",
    )
    parser.add_argument("--drain", type=float, default=240.0, help="seconds to drain at the end")
    parser.add_argument("--keep", action="store_true", help="keep the private var dir (logs)")
    args = parser.parse_args(argv)  # fmt: skip

    # A private CLEARWAY_VAR_DIR before anything reads it (exchange.devstack.procs does at
    # import); as root PostgreSQL runs as the postgres user, who must be able to enter it.
    var = Path(tempfile.mkdtemp(prefix="clearway-chaos-", dir="/var/tmp"))
    var.chmod(0o755)
    (var / "log").mkdir()
    os.environ["CLEARWAY_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    started = time.monotonic()

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too stops every process this run started

    signal.signal(signal.SIGTERM, interrupt)
    print(f"chaos: seed {args.seed}, {args.minutes:g} minutes, var {var}", flush=True)
    stack = PrivateStack(var)
    try:
        try:
            stack.start(timeout=420)
        except Exception as error:
            print(f"chaos: ERROR: {error}", flush=True)
            return 2
        return soak(stack, args, started)
    finally:
        stack.stop()
        if args.keep:
            print(f"chaos: logs kept in {var}/log", flush=True)
        else:
            shutil.rmtree(var, ignore_errors=True)


def soak(stack: PrivateStack, args: argparse.Namespace, started: float) -> int:
    import django

    django.setup()
    from django.conf import settings
    from web3 import Web3

    from bench.chaos_checks import Verdict, check_all
    from bench.chaos_load import (
        Follower,
        LoadStats,
        Trader,
        credited,
        followers_verdict,
        fund,
        run_followers,
    )
    from exchange.chain import Deployment
    from exchange.client import ClearwayClient
    from exchange.devstack.demo import anvil_key
    from exchange.devstack.procs import say

    say(f"chaos: stack up after {time.monotonic() - started:.0f}s")
    deployment = Deployment.from_json(json.loads((stack.var / "deployment.json").read_text()))
    w3 = Web3(Web3.HTTPProvider(stack.anvil_url, request_kwargs={"timeout": 30}))
    traders = [Trader(stack.api, anvil_key(k), args.seed * 100 + k, 0.3) for k in TRADER_KEYS]
    probe_client = ClearwayClient(stack.api, private_key=anvil_key(PROBE_KEY), timeout=5)
    for client in [t.client for t in traders] + [probe_client]:
        client.login()
        fund(client, w3, deployment)
    clients = [t.client for t in traders] + [probe_client]
    deadline = time.monotonic() + 180
    while not all(credited(c) for c in clients):
        if time.monotonic() > deadline:
            say("chaos: ERROR: deposits not credited within 180s")
            return 2
        time.sleep(1)
    say(f"chaos: {len(clients)} wallets funded by vault deposits; load starts")

    stop_load = threading.Event()
    ws_url = f"ws://127.0.0.1:{stack.ports['ws']}/ws/v1/markets/WETH-USDC"
    followers = [Follower(ws_url, stack.api), Follower(ws_url, stack.api)]
    follower_thread = run_followers(followers, stop_load)
    threads = [threading.Thread(target=t.run, args=(stop_load,), daemon=True) for t in traders]
    for thread in threads:
        thread.start()

    schedule = fault_schedule(args.seed, args.minutes, settings.CONFIRMATION_DEPTH)
    injector = Injector(stack, probe_client, args.recovery_bound)
    outcomes: list[Outcome] = []
    load_started = injector.load_started = time.monotonic()
    try:
        # Faults of different kinds overlap (each recovers in its own thread); faults of one
        # kind wait for the previous one to recover: a second SIGKILL must not hit a pid the
        # supervisor has not replaced yet.
        locks = {kind: threading.Lock() for kind in KINDS}

        closed = threading.Event()  # after the deadline: faults still queued are not injected

        def run_fault(fault: Fault) -> None:
            with locks[fault.kind]:
                if closed.is_set():
                    return
                try:
                    outcomes.append(injector.inject(fault))
                except Exception as error:  # reported as a fault that did not recover
                    outcomes.append(Outcome(fault, None, f"injection failed: {error!r}"))

        fault_threads = []
        for fault in schedule:
            wait = fault.at - (time.monotonic() - load_started)
            if wait > 0:
                time.sleep(wait)
            thread = threading.Thread(target=run_fault, args=(fault,), daemon=True)
            thread.start()
            fault_threads.append(thread)
        deadline = time.monotonic() + args.minutes * 60 + args.recovery_bound
        for thread in fault_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        closed.set()
        remaining = args.minutes * 60 - (time.monotonic() - load_started)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        stack.proxy.unblock()
        stop_load.set()
        for thread in threads:
            thread.join(30)
    load_seconds = time.monotonic() - load_started
    say(f"chaos: load stopped after {load_seconds:.0f}s; draining")
    drained = drain(stack, args.drain)
    say(f"chaos: {drained}")

    stats = LoadStats()
    for trader in traders:
        stats.merge(trader.stats)
    market = traders[0].client.market("WETH-USDC")
    ws_ok, ws_detail = followers_verdict(followers, stack.api, market)
    follower_thread.join(15)
    verdicts = check_all(
        w3=w3, deployment=deployment, addresses=[c.address for c in clients], placed=stats.placed
    )
    verdicts.append(Verdict("settlement drained", "NOT" not in drained, drained))
    verdicts.append(Verdict("websocket clients gapless or resynced to REST", ws_ok, ws_detail))
    verdicts.append(
        Verdict(
            "ledger conserved after every fault (under load)",
            not injector.drifts,
            "; ".join(injector.drifts) or f"{len(outcomes)} checks",
        )
    )
    unrecovered = [o for o in outcomes if o.recovery is None]
    verdicts.append(
        Verdict(
            f"every fault recovered within {args.recovery_bound:.0f}s",
            not unrecovered,
            "; ".join(f"{o.fault.kind}@{o.fault.at:.0f}s {o.note}" for o in unrecovered),
        )
    )
    restarts = [line for line in stack.lines if "restarted (pid" in line]
    outcomes_text = ", ".join(f"{k}: {v}" for k, v in stats.outcomes.most_common())

    print()
    print(f"Chaos soak: seed {args.seed}, load {load_seconds:.0f}s, {len(schedule)} faults "
          f"scheduled, {len(outcomes)} injected and finished")  # fmt: skip
    print(f"Load: {len(stats.placed)} orders acknowledged, {stats.cancelled} cancels; "
          f"requests: {outcomes_text}")  # fmt: skip
    print(f"Supervisor restarts: {len(restarts)}; wall time {time.monotonic() - started:.0f}s")
    print()
    print(table(fault_rows(outcomes), ["fault", "count", "recovery median", "recovery max"]))
    print()
    rows = [[v.invariant, "PASS" if v.ok else "FAIL", v.detail[:160]] for v in verdicts]
    print(table(rows, ["invariant", "result", "detail"]))
    for v in verdicts:
        if not v.ok and len(v.detail) > 160:
            print(f"\n{v.invariant}: {v.detail}")
    print(flush=True)
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
