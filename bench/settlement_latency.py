"""Trade-to-confirmed settlement latency with 1-second blocks and 1 confirmation.

    .venv/bin/python -m bench.settlement_latency [--trades 600] [--rate 20] [--seed 7]

Starts its own anvil (deploys the vault and funds the traders with automining, then switches to
1-second interval mining), its own Temporal dev server, a scratch PostgreSQL database on the
server of DATABASE_URL (migrated, dropped at the end) and the real worker process
(`python -m workers.temporal`, default settlement settings: batches of up to 1,000 trades or
2 seconds, CONFIRMATION_DEPTH 1). It then inserts trades at --rate per second, as the matching
worker would, and measures each trade from its created_at to its batch's confirmed_at (both
stamped by this machine's clock). Exits 1 if the p95 misses the 5-second target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_P95 = 5.0
TRADERS = 7  # anvil unlocks 10 accounts: admin, operator, fee account and these
WETH, USDC = 10**18, 10**6


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20.0, help="trades per second")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from exchange.chain import deploy_stack, mint_test_tokens
    from exchange.chain.tx import connect
    from exchange.devstack import services
    from exchange.devstack.procs import VAR, ManagedProcess, free_port, wait_until

    log_dir = VAR / "log" / "bench"
    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})["NAME"] = f"bench_settlement_{os.getpid()}"
    original_name = db["NAME"]
    started: list[ManagedProcess] = []
    scratch = Path(tempfile.mkdtemp(prefix="clearway-bench-"))
    try:
        print("bench: scratch database, anvil, Temporal", flush=True)
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        anvil_port = free_port()
        started.append(services.start_anvil(port=anvil_port, log_dir=log_dir))
        rpc_url = f"http://127.0.0.1:{anvil_port}"
        temporal_port = free_port()
        started.append(services.start_temporal(port=temporal_port, ui_port=None, log_dir=log_dir))

        w3 = connect(rpc_url)
        admin, operator, fee, *traders = w3.eth.accounts[: 3 + TRADERS]
        deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee)
        (scratch / "deployment.json").write_text(json.dumps(deployment.to_json()))
        vault = deployment.vault_client(w3)
        weth, usdc = deployment.tokens["WETH"], deployment.tokens["USDC"]
        for trader in traders:
            for token, amount in ((weth, 1_000 * WETH), (usdc, 10**7 * USDC)):
                mint_test_tokens(w3, token, trader, amount, sender=trader)
                vault.deposit(token, amount, sender=trader)
        w3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]

        market = setup_market(weth, usdc)
        worker = ManagedProcess.start(
            "bench-temporal-worker",
            [sys.executable, "-m", "workers.temporal"],
            log_dir=log_dir,
            env={
                "DATABASE_URL": database_url(db),
                "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
                "TEMPORAL_NAMESPACE": "default",
                "CHAIN_RPC_URL": rpc_url,
                "VAULT_ADDRESS": "",
                "CLEARWAY_VAR_DIR": str(scratch),
            },
        )
        started.append(worker)
        print("bench: waiting for the chain watcher to credit the deposits", flush=True)
        wait_until(
            lambda: credited() == 2 * len(traders), timeout=120, what="deposits", proc=worker
        )

        print(f"bench: {args.trades} trades at {args.rate}/s", flush=True)
        booked = time.monotonic()
        book(market, traders, args.trades, args.rate, random.Random(args.seed))
        booked = args.trades / (time.monotonic() - booked)
        wait_until(lambda: unconfirmed() == 0, timeout=300, what="settlement", proc=worker)
        latencies, batches = measure()
    finally:
        for proc in reversed(started):
            proc.stop()
        connection.creation.destroy_test_db(original_name, verbosity=0)

    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    print()
    print(f"machine: {machine()}")
    print(f"trades {len(latencies)} at {args.rate}/s (achieved {booked:.0f}/s), batches {batches}, "
          f"{len(latencies) / batches:.1f} trades per batch")  # fmt: skip
    print(f"trade -> confirmed: p50 {p50:.2f} s  p95 {p95:.2f} s  p99 {p99:.2f} s  "
          f"max {max(latencies):.2f} s  mean {statistics.mean(latencies):.2f} s")  # fmt: skip
    ok = p95 < TARGET_P95
    print(f"target p95 < {TARGET_P95:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


def database_url(db: dict) -> str:
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def setup_market(weth: str, usdc: str):  # type: ignore[no-untyped-def]
    from exchange.markets.models import Asset, Market

    base = Asset.objects.create(symbol="WETH", decimals=18, token_address=weth)
    quote = Asset.objects.create(symbol="USDC", decimals=6, token_address=usdc)
    return Market.objects.create(
        symbol="WETH-USDC", base=base, quote=quote, tick_size=10_000, lot_size=10**15,
        min_quantity=10**15, max_quantity=1_000 * WETH, max_notional=10**9 * USDC,
        maker_fee_bps=2, taker_fee_bps=5,
    )  # fmt: skip


def credited() -> int:
    from exchange.custody.models import Deposit

    count = Deposit.objects.filter(status="credited").count()
    _close()
    return count


def unconfirmed() -> int:
    from exchange.trading.models import Trade

    count = Trade.objects.exclude(settlement_status="confirmed").count()
    _close()
    return count


def _close() -> None:
    from django.db import connection

    connection.close()  # fresh reads; never hold a transaction snapshot across polls


def book(market, traders: list[str], count: int, rate: float, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """Insert fills at ``rate`` per second, each a maker and a taker order and a trade, stamped
    with the current time: what the matching worker writes (its ledger entries do not matter to
    settlement, which reads only the trades)."""
    from django.utils import timezone

    from exchange.accounts.services import trader_get_or_create
    from exchange.trading.models import Order, Trade

    accounts = [trader_get_or_create(address=trader) for trader in traders]
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        maker, taker = rng.sample(accounts, 2)
        side = rng.choice(("buy", "sell"))
        price = rng.randrange(2_900, 3_100) * USDC
        quantity = rng.randrange(1, 100) * 10**15
        notional = market.notional(price, quantity)
        orders = []
        for account, order_side in ((maker, "sell" if side == "buy" else "buy"), (taker, side)):
            orders.append(Order.objects.create(
                account=account, market=market, side=order_side, order_type="limit", price=price,
                quantity=quantity, filled_quantity=quantity, time_in_force="gtc",
                stp="cancel_taker", client_order_id=f"b{i}-{order_side}", nonce=2 * i + len(orders),
                signature="0x", request_fingerprint="0" * 64, status="filled",
                hold_asset=market.quote if order_side == "buy" else market.base, hold_amount=0,
                hold_remaining=0, sequence=i + 1,
            ))  # fmt: skip
        Trade.objects.create(
            trade_id=f"{market.symbol}-{i + 1}-0", market=market, sequence=i + 1,
            maker_order=orders[0], taker_order=orders[1], maker_account=maker, taker_account=taker,
            taker_side=side, price=price, quantity=quantity, notional=notional,
            maker_fee=notional * 2 // 10_000, taker_fee=notional * 5 // 10_000,
            created_at=timezone.now(),
        )  # fmt: skip


def measure() -> tuple[list[float], int]:
    from exchange.custody.models import BatchTrade

    rows = BatchTrade.objects.filter(batch__status="confirmed").values_list(
        "trade__created_at", "batch__confirmed_at", "batch_id"
    )
    latencies = [(confirmed - created).total_seconds() for created, confirmed, _ in rows]
    return latencies, len({batch for _, _, batch in rows})


if __name__ == "__main__":
    sys.exit(main())
