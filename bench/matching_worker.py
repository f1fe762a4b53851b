"""Matching worker benchmark: the real worker process, driven through the database.

    .venv/bin/python bench/matching_worker.py                       # all phases
    .venv/bin/python bench/matching_worker.py --phases backlog --backlog 100000
    .venv/bin/python bench/matching_worker.py --phases latency --rate 2500 --duration 30
    .venv/bin/python bench/matching_worker.py --phases latency --rate 5000 --repeats 5

Everything runs against a fresh database (``clearway_bench_<pid>``, created, migrated and
dropped; ``--keep-db`` keeps it) on the PostgreSQL of ``DATABASE_URL``, as that server is set up
(the script prints the settings that matter: on this machine autovacuum is off, so repeated runs
meet the dead rows of the ones before). Two markets (WETH-USDC
and WBTC-USDC), ``--accounts`` funded traders; the command stream is seeded and written by
``tests/matching_worker/stream.py`` exactly as the trading services write it (sequenced command,
order, hold entry, NOTIFY), without the signature check. Mix: ~62% of places rest, the others
cross (IOC, FOK, market, marketable limits) or are post-only; ~18% cancels, ~2% cancel-alls.

Phases:

backlog   ``--backlog`` commands are written first, then ``python -m workers.matching`` starts
          and drains them. Sustained throughput = commands committed between the worker's
          first and last batch commit / that time (book rebuild and process start excluded).
overload  a separate feeder process offers more than the worker can take (``--overload-rate``)
          for ``--duration`` s: throughput with the writes competing for the same two cores.
latency   a separate feeder process offers ``--rate`` commands/s for ``--duration`` s in 100
          transactions a second (its stream generated before its clock starts). Latency = the
          worker's commit of a command's batch (its clock, logged per batch with
          ``--log-batches``) minus the command's ``accepted_at`` (the feeder's clock just
          before its insert, like ``order_place``'s ``now``); the first 2 s of the feed are
          warm-up and not counted.
takeover  two workers run; the owner of both markets is SIGKILLed ``--takeovers`` times under
          a light feed. Measured: kill -> the standby holds both advisory locks (pg_locks,
          polled every 5 ms) and kill -> the standby's first committed batch.

The worker's batch log, the feeder and this script all use the same machine clock.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BATCH_LINE = re.compile(r"batch (\S+) (\d+) (\d+) (\d+) ([\d.]+)")


# ---------------------------------------------------------------------------------- database
def base_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clearway")


def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(with_dbname(base_url(), "postgres"), autocommit=True) as conn:
        conn.execute(sql)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    django.setup()


# ----------------------------------------------------------------------------------- helpers
def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


class WorkerProcess:
    """``python -m workers.matching`` with its batch log in a file."""

    def __init__(self, env: dict[str, str], batch_size: int, tag: str) -> None:
        self.log = Path(tempfile.gettempdir()) / f"bench-matching-{os.getpid()}-{tag}.log"
        self.file = self.log.open("w")
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.matching",
                "--batch-size",
                str(batch_size),
                "--metrics-port",
                "0",
                "--log-batches",
            ],
            cwd=REPO,
            env=env,
            stdout=self.file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def batches(self) -> list[tuple[str, int, int, int, float]]:
        """(market, first seq, last seq, fills, commit unix time) per committed batch."""
        text = self.log.read_text()
        return [
            (m[1], int(m[2]), int(m[3]), int(m[4]), float(m[5])) for m in BATCH_LINE.finditer(text)
        ]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        code = self.popen.wait(timeout=30)
        self.file.close()
        return code


def applied() -> dict[str, int]:
    from exchange.trading.models import MarketCursor

    return {
        symbol: seq
        for symbol, seq in MarketCursor.objects.values_list("market__symbol", "applied_sequence")
    }


def newest() -> dict[str, int]:
    from exchange.trading.models import MarketSequence

    return {
        symbol: seq
        for symbol, seq in MarketSequence.objects.values_list("market__symbol", "last_sequence")
    }


def wait_drained(timeout: float) -> None:
    from django.db import close_old_connections

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        close_old_connections()
        target, done = newest(), applied()
        if all(done.get(symbol, 0) >= seq for symbol, seq in target.items()):
            return
        time.sleep(0.05)
    raise SystemExit(f"the worker did not drain the log in {timeout:.0f}s")


def feed(args: argparse.Namespace) -> None:
    """The feeder process: ``--rate`` commands/s, a transaction every 10 ms (what is due by
    then; if a write takes longer, the next one carries more, so the rate holds)."""
    django_setup()
    from exchange.accounts.models import Account
    from tests.matching_worker.stream import CommandWriter, StreamGenerator, setup_markets

    markets = setup_markets()
    accounts = list(Account.objects.filter(kind="trader").values_list("pk", flat=True))
    generator = StreamGenerator(markets, accounts, seed=args.seed, id_base=args.id_base)
    writer = CommandWriter(markets)
    # The whole stream up front: generating it is the load generator's work, not the
    # system's, and would take CPU from it on the same cores.
    stream = generator.take(min(int(args.rate * args.duration) + 1_000, 200_000))
    gc.freeze()  # the stream is long-lived: keep collections from walking it
    interval = 0.01
    start = time.monotonic()
    written = 0
    tick = 0
    while (elapsed := time.monotonic() - start) < args.duration:
        due = min(int(args.rate * elapsed) - written, 1_000)
        if due > 0:
            if written + due > len(stream):  # a long feed (takeover): generate as it goes
                stream.extend(generator.take(written + due - len(stream)))
            writer.write(stream[written : written + due])
            written += due
        tick += 1
        pause = start + tick * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    print(f"fed {written} commands in {time.monotonic() - start:.2f}s")


def start_feeder(env: dict[str, str], rate: float, duration: float, seed: int, id_base: int):
    return subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--feed",
            "--rate",
            str(rate),
            "--duration",
            str(duration),
            "--seed",
            str(seed),
            "--id-base",
            str(id_base),
        ],
        cwd=REPO,
        env=env,
    )


def sequence_times() -> dict[tuple[str, int], float]:
    from exchange.trading.models import OrderCommand

    return {
        (symbol, seq): accepted.timestamp()
        for symbol, seq, accepted in OrderCommand.objects.values_list(
            "market__symbol", "sequence", "accepted_at"
        )
    }


def throughput(batches: list[tuple[str, int, int, int, float]]) -> tuple[int, float, float]:
    """(commands, seconds, commands/s) between the first and the last batch commit."""
    if len(batches) < 2:
        return 0, 0.0, 0.0
    ordered = sorted(batches, key=lambda b: b[4])
    commands = sum(last - first + 1 for _, first, last, _, _ in ordered[1:])
    seconds = ordered[-1][4] - ordered[0][4]
    return commands, seconds, commands / seconds if seconds else 0.0


# ------------------------------------------------------------------------------------ phases
def phase_backlog(args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    from exchange.accounts.models import Account
    from tests.matching_worker.stream import CommandWriter, StreamGenerator, setup_markets

    markets = setup_markets()
    accounts = list(Account.objects.filter(kind="trader").values_list("pk", flat=True))
    generator = StreamGenerator(markets, accounts, seed=args.seed, id_base=0)
    writer = CommandWriter(markets)
    started = time.monotonic()
    for _ in range(0, args.backlog, 500):
        writer.write(generator.take(500))
    print(f"backlog: wrote {args.backlog} commands in {time.monotonic() - started:.1f}s")
    worker = WorkerProcess(env, args.batch_size, "backlog")
    wait_drained(600)
    worker.stop()
    batches = worker.batches()
    commands, seconds, rate = throughput(batches)
    fills = sum(b[3] for b in batches)
    sizes = [b[2] - b[1] + 1 for b in batches]
    result = {
        "commands": commands,
        "seconds": seconds,
        "rate": rate,
        "fills": fills,
        "batches": len(batches),
        "mean_batch": statistics.mean(sizes) if sizes else 0,
    }
    print(
        f"backlog: {commands} commands in {seconds:.2f}s = {rate:,.0f} commands/s "
        f"({len(batches)} batches, mean {result['mean_batch']:.0f} commands, {fills} fills)"
    )
    return result


def server_settings() -> str:
    from django.db import connection

    names = ("autovacuum", "shared_buffers", "synchronous_commit", "max_wal_size")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            [list(names)],
        )
        return ", ".join(f"{n}={v}{u or ''}" for n, v, u in cursor.fetchall())


def phase_feed(
    args: argparse.Namespace, env: dict[str, str], name: str, rate: float, id_base: int
) -> dict[str, object]:
    worker = WorkerProcess(env, args.batch_size, name)
    time.sleep(3)  # process start and book rebuild, before the feed
    feed_start = time.time()
    feeder = start_feeder(env, rate, args.duration, args.seed + id_base, id_base)
    feeder.wait()
    fed_until = time.time()
    wait_drained(300)
    worker.stop()
    accepted = sequence_times()
    # Warm-up: the first 2 s of the feed (it starts once the feeder has set up).
    skip_before = min(t for t in accepted.values() if t >= feed_start) + 2.0
    batches = [b for b in worker.batches() if b[4] > skip_before]
    latencies = []
    for symbol, first, last, _, committed in batches:
        for seq in range(first, last + 1):
            accepted_at = accepted[(symbol, seq)]
            if skip_before <= accepted_at <= fed_until:
                latencies.append((committed - accepted_at) * 1000)
    in_window = [b for b in batches if b[4] <= fed_until]
    _, _, persisted = throughput(in_window)
    offered = len(latencies) / max(fed_until - skip_before, 1e-9)
    result = {
        "offered": offered,
        "persisted": persisted,
        "commands": len(latencies),
        "p50": percentile(latencies, 50),
        "p90": percentile(latencies, 90),
        "p99": percentile(latencies, 99),
        "max": max(latencies, default=float("nan")),
        "mean_batch": statistics.mean([b[2] - b[1] + 1 for b in in_window]) if in_window else 0,
    }
    print(
        f"{name}: offered {offered:,.0f}/s, persisted {persisted:,.0f}/s while fed; "
        f"latency ms p50 {result['p50']:.1f} p90 {result['p90']:.1f} p99 {result['p99']:.1f} "
        f"max {result['max']:.1f} over {len(latencies)} commands "
        f"(mean batch {result['mean_batch']:.0f})"
    )
    return result


def lock_holders() -> dict[int, str]:
    """market id -> application_name of the connection holding its ownership lock."""
    from django.db import connection

    from exchange.matching_worker.runner import LOCK_NAMESPACE

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.objid, a.application_name FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s",
            [LOCK_NAMESPACE],
        )
        return {int(objid): name for objid, name in cursor.fetchall()}


def phase_takeover(args: argparse.Namespace, env: dict[str, str]) -> dict[str, object]:
    from exchange.markets.models import Market

    market_ids = set(Market.objects.values_list("pk", flat=True))
    feeder = start_feeder(env, 200, 10_000, args.seed + 7, 90_000_000)
    workers = [WorkerProcess(env, args.batch_size, "takeover-0")]
    lock_times, apply_times = [], []
    try:
        for round_ in range(args.takeovers):
            time.sleep(1.5)
            workers.append(WorkerProcess(env, args.batch_size, f"takeover-{round_ + 1}"))
            time.sleep(2.5)  # the new one starts and waits as the standby
            owner, standby = workers[-2], workers[-1]
            holders = lock_holders()
            if set(holders) != market_ids or set(holders.values()) != {
                f"clearway-matching-{owner.pid}"
            }:
                raise SystemExit(f"unexpected lock holders before the kill: {holders}")
            killed = time.time()
            owner.popen.send_signal(signal.SIGKILL)
            wanted = f"clearway-matching-{standby.pid}"
            while True:
                holders = lock_holders()
                if set(holders) == market_ids and set(holders.values()) == {wanted}:
                    lock_times.append(time.time() - killed)
                    break
                if time.time() - killed > 30:
                    raise SystemExit("the standby did not take over within 30 s")
                time.sleep(0.005)
            while True:
                first = [b[4] for b in standby.batches() if b[4] > killed]
                if first:
                    apply_times.append(min(first) - killed)
                    break
                if time.time() - killed > 30:
                    raise SystemExit("the standby applied nothing within 30 s")
                time.sleep(0.02)
            owner.stop()
            print(
                f"takeover {round_ + 1}: lock after {lock_times[-1] * 1000:.0f} ms, "
                f"first batch after {apply_times[-1] * 1000:.0f} ms"
            )
    finally:
        feeder.send_signal(signal.SIGTERM)
        feeder.wait()
        for worker in workers:
            worker.stop()
    return {
        "lock_median": statistics.median(lock_times),
        "lock_max": max(lock_times),
        "apply_median": statistics.median(apply_times),
        "apply_max": max(apply_times),
    }


# -------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="backlog,overload,latency,takeover")
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=2_500, help="latency phase, commands/s")
    parser.add_argument("--overload-rate", type=float, default=12_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1, help="latency phase runs (median)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--takeovers", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--feed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--id-base", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feed:
        feed(args)
        return

    name = f"clearway_bench_{os.getpid()}"
    url = with_dbname(base_url(), name)
    admin(f"CREATE DATABASE {name}")
    try:
        os.environ["DATABASE_URL"] = url
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:6379/9"}
        django_setup()
        from django.core.management import call_command

        from tests.matching_worker.stream import make_accounts, setup_markets

        call_command("migrate", verbosity=0)
        setup_markets()
        make_accounts(args.accounts)
        print(f"machine: {machine()}; database {name}; batch size {args.batch_size}")
        print(f"postgresql: {server_settings()}")
        phases = args.phases.split(",")
        if "backlog" in phases:
            phase_backlog(args, env)
        if "overload" in phases:
            phase_feed(args, env, "overload", args.overload_rate, 10_000_000)
        if "latency" in phases:
            # The tail moves by +-20% from run to run on this shared machine: report the median
            # of --repeats runs as the figure.
            runs = [
                phase_feed(args, env, "latency", args.rate, 20_000_000 + run * 1_000_000)
                for run in range(args.repeats)
            ]
            if len(runs) > 1:
                p50s = [float(r["p50"]) for r in runs]  # type: ignore[arg-type]
                p99s = [float(r["p99"]) for r in runs]  # type: ignore[arg-type]
                print(
                    f"latency over {len(runs)} runs: median p50 {statistics.median(p50s):.1f} ms, "
                    f"median p99 {statistics.median(p99s):.1f} ms "
                    f"(p99 {min(p99s):.1f}-{max(p99s):.1f})"
                )
        if "takeover" in phases:
            result = phase_takeover(args, env)
            print(
                f"takeover over {args.takeovers} kills: lock median "
                f"{result['lock_median'] * 1000:.0f} ms, max {result['lock_max'] * 1000:.0f} ms;"
                f" first batch median {result['apply_median'] * 1000:.0f} ms, "
                f"max {result['apply_max'] * 1000:.0f} ms"
            )
        from django.core.management import call_command as check

        check("ledger_check", stdout=open(os.devnull, "w"))  # noqa: SIM115
        print("ledger_check: consistent")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
