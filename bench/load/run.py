"""`make load`: k6 against the whole local stack, with a report beside the HTTP figures.

    .venv/bin/python -m bench.load.run --scenarios smoke --rate 200 --duration 20s
    .venv/bin/python -m bench.load.run --scenarios steady,spike       # the issue's profiles
    .venv/bin/python -m bench.load.run --scenarios soak               # `make soak`

Steps, all bounded in time:

1. The stack: with ``--api URL`` an already running `make run` (this process must then share
   its environment: DATABASE_URL, CHAIN_RPC_URL, CLEARWAY_VAR_DIR); by default it starts its own
   (`python -m exchange.devstack run`) on private ports with a scratch database, a scratch
   var dir, sign-in rate limits raised (the set-up signs in many wallets from one address) and
   the demo market maker off, and stops it at the end however the run ends.
2. bench/load/setup.py: funded wallets (real deposits), SIWE tokens, raised order rate limits,
   as many pre-signed orders as the scenarios will post.
3. Per scenario, the same k6 arrival-rate profile against /healthz (the bare server and its
   middleware), GET /api/v1/auth/whoami (one authenticated query: the framework ceiling) and
   POST /api/v1/orders. k6 writes each summary as JSON.
4. Accepted-to-matched latency from the database, once the matching worker has caught up:
   an order's command ``accepted_at`` (set by the API in the placing transaction) to its
   ``updated_at``, which the worker sets to its batch transaction's ``now()`` when it applies
   the order. Orders that later rested and were filled as makers are left out (their
   ``updated_at`` moved on); the batch commits a few ms after that ``now()``.
5. `manage.py ledger_check`, then a Markdown report in var/load/ (printed too).

Load average (`uptime`) is recorded before and after each k6 run: on a shared 2-core machine the
figures mean little without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from exchange.devstack.procs import REPO, free_port, port_open

K6_SCRIPT = REPO / "bench" / "load" / "orders.js"
OUT = REPO / "var" / "load"
PROFILES = {  # rate/s, seconds (incl. a spike's 10 s ramp): mirrors orders.js
    "smoke": (100, 20),
    "steady": (3000, 300),
    "spike": (3000, 60),
    "soak": (1000, 1800),
}
TARGETS = ("healthz", "whoami", "orders")
# How the devstack serves the API (exchange/devstack/stack.py::gunicorn_args): in the report.
SERVER_KNOBS = ("GUNICORN_WORKER_CLASS", "GUNICORN_WORKERS", "GUNICORN_THREADS", "API_DEBUG")


def log(message: str) -> None:
    print(f"[load] {message}", flush=True)


def uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def k6_binary() -> str:
    found = Path(sys.executable).parent / "k6"
    if not found.exists():
        raise SystemExit("k6 is missing: `make load` installs bench/requirements.txt first")
    return str(found)


def parse_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


# ------------------------------------------------------------------------------------- stack
class OwnStack:
    """`python -m exchange.devstack run` on private ports and a scratch database."""

    def __init__(self, workdir: Path, extra_env: dict[str, str]) -> None:
        names = ("temporal", "ui", "chain", "api", "ws", "metrics", "temporal_metrics")
        ports = {name: free_port() for name in names}
        self.database = f"clearway_load_{uuid.uuid4().hex[:8]}"
        self.admin_url = "postgres://postgres@127.0.0.1:5432/postgres"
        self.env = {
            **os.environ,
            "CLEARWAY_VAR_DIR": str(workdir / "var"),
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.database}",
            "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
            "TEMPORAL_UI_URL": f"http://127.0.0.1:{ports['ui']}",
            "CHAIN_RPC_URL": f"http://127.0.0.1:{ports['chain']}",
            "API_PORT": str(ports["api"]),
            "WS_PORT": str(ports["ws"]),
            "MATCHING_METRICS_PORT": str(ports["metrics"]),
            "TEMPORAL_METRICS_PORT": str(ports["temporal_metrics"]),
            # The set-up signs in every wallet from 127.0.0.1: one sign-in bucket for all.
            "AUTH_RATE_PER_SECOND": "1000",
            "AUTH_RATE_BURST": "1000",
            "DEMO_MARKET_MAKER": "0",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        self.api = f"http://127.0.0.1:{ports['api']}"
        self.log_path = workdir / "stack.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 300) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "exchange.devstack", "run"],
                cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the stack exited early; see {self.log_path}")
            if "Clearway is running" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(1)
        raise SystemExit(f"the stack was not up after {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # Like Ctrl-C: the devstack stops every process it started, in reverse order.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        import psycopg

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(self.admin_url, autocommit=True) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


# --------------------------------------------------------------------------------------- k6
def run_k6(
    base: str, orders: Path, target: str, profile: str, rate: int | None, duration: str | None,
    out: Path,
) -> dict[str, Any]:  # fmt: skip
    summary = out / f"k6-{profile}-{target}.json"
    argv = [
        k6_binary(), "run", "--quiet", "--no-usage-report", f"--summary-export={summary}",
        "-e", f"BASE={base}", "-e", f"ORDERS={orders}", "-e", f"TARGET={target}",
        "-e", f"PROFILE={profile}",
    ]  # fmt: skip
    if rate:
        argv += ["-e", f"RATE={rate}"]
    if duration:
        argv += ["-e", f"DURATION={duration}"]
    argv.append(str(K6_SCRIPT))
    seconds = parse_seconds(duration) if duration else PROFILES[profile][1]
    load_before = uptime()
    started = datetime.now(UTC)
    # Bounded: the scenario's length plus k6's graceful stop (30 s) and some slack.
    result = subprocess.run(argv, cwd=REPO, timeout=seconds + 120, capture_output=True, text=True)
    (out / f"k6-{profile}-{target}.log").write_text(result.stdout + result.stderr)
    if result.returncode not in (0, 99):  # 99: a threshold failed, the summary is still there
        raise SystemExit(f"k6 failed ({result.returncode}):\n{result.stderr[-3000:]}")
    metrics = json.loads(summary.read_text())["metrics"]
    duration_s = seconds + (10 if profile == "spike" else 0)
    return {
        "target": target,
        "profile": profile,
        "offered": rate or PROFILES[profile][0],
        "duration": duration_s,
        "started": started,
        "ended": datetime.now(UTC),
        "load_before": load_before,
        "load_after": uptime(),
        "thresholds_ok": result.returncode == 0,
        "metrics": metrics,
    }


def _metric(metrics: dict[str, Any], name: str, field: str, default: float = 0.0) -> float:
    return float(metrics.get(name, {}).get(field, default))


# ---------------------------------------------------------------------------------- database
def wait_caught_up(database_url: str, timeout: float = 180) -> bool:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            behind = conn.execute(
                "SELECT coalesce(sum(s.last_sequence - coalesce(c.applied_sequence, 0)), 0)"
                " FROM trading_marketsequence s"
                " LEFT JOIN trading_marketcursor c USING (market_id)"
            ).fetchone()[0]
            if behind == 0:
                return True
            time.sleep(0.5)
    return False


MATCHED_LATENCY = """
    SELECT count(*),
           percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ms),
           max(ms)
    FROM (
        SELECT extract(epoch FROM o.updated_at - c.accepted_at) * 1000 AS ms
        FROM trading_ordercommand c
        JOIN trading_order o ON o.id = c.order_id
        WHERE c.kind = 'place' AND c.accepted_at >= %s AND c.accepted_at < %s
          AND o.status <> 'accepted'
          AND NOT EXISTS (SELECT 1 FROM trading_trade t WHERE t.maker_order_id = o.id)
    ) AS applied
"""


def matched_latency(database_url: str, start: datetime, end: datetime) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        count, pcts, worst = conn.execute(MATCHED_LATENCY, (start, end)).fetchone()
        trades = conn.execute(
            "SELECT count(*) FROM trading_trade WHERE created_at >= %s AND created_at < %s",
            (start, end),
        ).fetchone()[0]
    pcts = pcts or [None, None, None]
    return {"orders": count, "p50": pcts[0], "p95": pcts[1], "p99": pcts[2], "max": worst,
            "trades": trades}  # fmt: skip


def ledger_check(env: dict[str, str]) -> tuple[bool, str]:
    result = subprocess.run(
        [sys.executable, "manage.py", "ledger_check"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result.returncode == 0, (result.stdout + result.stderr).strip()


# ------------------------------------------------------------------------------------ report
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(runs: list[dict[str, Any]], latency: dict[str, dict], ledger: tuple[bool, str],
           args: argparse.Namespace) -> str:  # fmt: skip
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    lines = [
        f"# Load run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{' '.join(sys.argv)}`",
        f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}",
        f"- machine: {os.cpu_count()} cores, {cpu}; k6 and the whole stack co-located",
        f"- API server: {args.api or 'own stack'}; gunicorn "
        + " ".join(f"{k}={os.environ.get(k, '(default)')}" for k in SERVER_KNOBS),
        f"- pre-signed orders: {args.orders_signed} (a run that posts more wraps around: the rest "
        "are idempotent replays)",
        "",
        "| scenario | target | offered/s | achieved/s | p50 ms | p95 ms | p99 ms | failed | "
        "dropped | thresholds | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        m = run["metrics"]
        reqs = _metric(m, "http_reqs", "count")
        lines.append(
            f"| {run['profile']} | {run['target']} | {run['offered']} | "
            f"{reqs / run['duration']:.0f} | {_ms(_metric(m, 'http_req_duration', 'med'))} | "
            f"{_ms(_metric(m, 'http_req_duration', 'p(95)'))} | "
            f"{_ms(_metric(m, 'http_req_duration', 'p(99)'))} | "
            f"{_metric(m, 'http_req_failed', 'value') * 100:.2f} % | "
            f"{_metric(m, 'dropped_iterations', 'count'):.0f} | "
            f"{'pass' if run['thresholds_ok'] else 'FAIL'} | "
            f"{run['load_before']} → {run['load_after']} |"
        )
    lines += ["", "Accepted-to-matched (command accepted_at → the worker's applying batch):", ""]
    lines += ["| scenario | orders | p50 ms | p95 ms | p99 ms | max ms | trades |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for profile, lat in latency.items():
        lines.append(
            f"| {profile} | {lat['orders']} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | "
            f"{_ms(lat['p99'])} | {_ms(lat['max'])} | {lat['trades']} |"
        )
    ok, output = ledger
    lines += ["", f"ledger_check: {'passed' if ok else 'FAILED'}", "", "```", output[-2000:], "```"]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.run", description=__doc__)
    parser.add_argument("--scenarios", default="smoke", help=f"comma list of {list(PROFILES)}")
    parser.add_argument("--rate", type=int, help="override the profiles' arrival rate (/s)")
    parser.add_argument("--duration", help="override the profiles' duration, e.g. 20s, 5m")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--wallets", type=int, default=32)
    parser.add_argument("--api", help="an already running stack (default: start one)")
    parser.add_argument("--max-orders", type=int, default=400_000)
    args = parser.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    targets = [t for t in args.targets.split(",") if t]
    if unknown := [s for s in scenarios if s not in PROFILES]:
        parser.error(f"unknown scenarios {unknown}")

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = OUT / stamp
    out.mkdir(parents=True, exist_ok=True)
    needed = 0
    for s in scenarios:
        rate = args.rate or PROFILES[s][0]
        seconds = parse_seconds(args.duration) if args.duration else PROFILES[s][1]
        needed += rate * seconds
    orders_file = out / "orders.json"
    args.orders_signed = min(needed, args.max_orders)

    stack = None
    if args.api:
        base, env = args.api.rstrip("/"), dict(os.environ)
        if not port_open("127.0.0.1", int(base.rsplit(":", 1)[1])):
            raise SystemExit(f"nothing answers at {base}: start `make run` or leave out --api")
    else:
        stack = OwnStack(out, {})
    try:
        if stack is not None:
            log(f"starting the stack (log: {stack.log_path}); load {uptime()}")
            try:
                stack.start()
            except SystemExit as error:
                # Its free ports were chosen, then released: on a busy machine another process
                # can take one before the stack binds it. New ports, once.
                log(f"{error}; retrying once on other ports")
                stack.stop()
                stack = OwnStack(out / "retry", {})
                stack.start()
            base, env = stack.api, stack.env
        requests.get(f"{base}/readyz", timeout=15).raise_for_status()
        log(f"set-up: {args.wallets} wallets, {args.orders_signed} orders")
        subprocess.run(
            [sys.executable, "-m", "bench.load.setup", "--api", base,
             "--rpc", env.get("CHAIN_RPC_URL", "http://127.0.0.1:8545"),
             "--wallets", str(args.wallets), "--orders", str(args.orders_signed),
             "--out", str(orders_file)],
            cwd=REPO, env=env, check=True, timeout=1200,
        )  # fmt: skip
        runs, latency = [], {}
        database_url = env.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clearway")
        for profile in scenarios:
            for target in targets:
                log(f"k6 {profile} → {target} (load {uptime()})")
                run = run_k6(base, orders_file, target, profile, args.rate, args.duration, out)
                runs.append(run)
                if target == "orders":
                    if not wait_caught_up(database_url):
                        log("the matching worker did not catch up within 180 s")
                    latency[profile] = matched_latency(database_url, run["started"], run["ended"])
        ledger = ledger_check(env)
        text = report(runs, latency, ledger, args)
        (out / "report.md").write_text(text)
        print(text)
        log(f"report: {out / 'report.md'}")
        return 0 if ledger[0] else 1
    finally:
        if stack is not None:
            log("stopping the stack")
            stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
