"""Set-up for the k6 order-intake load test: funded wallets, tokens and pre-signed orders.

    .venv/bin/python -m bench.load.setup --api http://127.0.0.1:8000 --wallets 32 \
        --orders 60000 --out var/load/orders.json

Runs against a stack that `make run` (or `make load`) started, with the same environment
(DATABASE_URL, CHAIN_RPC_URL, CLEARWAY_VAR_DIR). For each wallet, a fresh key:

1. **Real deposits**, like the demo market maker: anvil gives the wallet gas (anvil_setBalance)
   and lets it send without its key (anvil_impersonateAccount: a dev-chain feature, the
   transactions themselves are ordinary), the wallet mints test WETH and USDC, approves the vault
   and deposits. The chain watcher credits the ledger once the deposits are confirmed; this
   script waits for that (bounded: --credit-timeout) by reading each wallet's balances over REST.
2. **Sign-in** with SIWE through the REST API, like any wallet (``ClearwayClient.login``).
3. **Raised order rate limits** for these accounts in the market (an AccountRiskOverride through
   ``risk_override_set``): the default 10 orders/s per account would refuse a load test.
4. **Pre-signed orders** (EIP-712), signed before k6 starts so signing never competes with the
   server for the CPU during the measurement: a mix of resting limit orders a few ticks away from
   the mid and crossing IOC orders (``--cross-fraction``) that take from them.

The output file, read by bench/load/orders.js::

    {"tokens": ["cw_...", ...], "orders": [[wallet_index, "<JSON body>"], ...], ...}

Each body is already serialised, so k6 posts it as is. The nonce (``time.time_ns()``-based, above
2**53) is a **decimal string**: a JSON number that large loses precision in JavaScript's doubles
(k6 runs JS), the signature would then not match, and the API accepts a nonce as a decimal string
or a number alike. The same holds for any client in JavaScript: send 256-bit integers as strings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account as EthAccount
from eth_account.messages import encode_typed_data
from web3 import Web3

from exchange.chain import Deployment
from exchange.chain.deploy import mint_test_tokens
from exchange.client import ApiError, ClearwayClient
from exchange.devstack.procs import VAR
from exchange.money import to_base_units
from exchange.trading.eip712 import SignedOrderFields, typed_data

MARKET = "WETH-USDC"
MID = Decimal(2000)
# Enough for every order a wallet signs to hold funds: buys hold price x quantity of USDC.
FUNDING = {"WETH": Decimal(1_000), "USDC": Decimal(5_000_000)}
# Per account and market, so k6's rate, not the risk limits, sets the pace.
RAISED_LIMITS = {
    "rate_limit_per_second": 1_000_000,
    "rate_limit_burst": 1_000_000,
    "max_open_orders": 10_000_000,
}


def log(message: str) -> None:
    print(f"[load-setup] {message}", flush=True)


def fund_wallet(rpc: str, deployment: Deployment, address: str) -> None:
    """Mint and deposit for real from ``address`` (impersonated on anvil, given gas first)."""
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    w3.provider.make_request("anvil_setBalance", [address, hex(10**20)])
    w3.provider.make_request("anvil_impersonateAccount", [address])
    vault = deployment.vault_client(w3)
    for symbol, amount in FUNDING.items():
        units = int(amount * 10 ** deployment.token_decimals[symbol])
        token = deployment.tokens[symbol]
        mint_test_tokens(w3, token, address, units, sender=address)
        vault.deposit(token, units, sender=address)


def sign_in(api: str, key: bytes, timeout: float) -> ClearwayClient:
    """SIWE sign-in; a 429 (the per-address sign-in bucket) waits its Retry-After, bounded."""
    client = ClearwayClient(api, private_key=key, timeout=30)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.login()
            return client
        except ApiError as error:
            if error.status != 429 or time.monotonic() > deadline:
                raise
            time.sleep(float(error.extra.get("retry_after", 1)))


def wait_credited(clients: list[ClearwayClient], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(clients)
    while pending:
        pending = [
            c
            for c in pending
            if any(Decimal(c.balance(s)["available"]) < a for s, a in FUNDING.items())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"{len(pending)} wallets not credited after {timeout:.0f}s: is the chain "
                "watcher (temporal worker) running?"
            )
        time.sleep(1)


def raise_limits(addresses: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    django.setup()
    from exchange.accounts.models import Account
    from exchange.markets.models import Market
    from exchange.risk.services import risk_override_set

    market = Market.objects.get(symbol=MARKET)
    for account in Account.objects.filter(address__in=addresses):
        risk_override_set(account=account, market=market, limits=RAISED_LIMITS, actor="load")


def _sign_chunk(job: dict[str, Any]) -> list[list[Any]]:
    """Sign ``job['count']`` orders for one wallet (runs in a worker process)."""
    rng = random.Random(job["seed"])
    key, wallet, domain = job["key"], job["wallet"], job["domain"]
    market = job["market"]
    base_dec, quote_dec = market["base_decimals"], market["quote_decimals"]
    expiry = int(time.time()) + 24 * 3600
    out = []
    for i in range(job["count"]):
        side = rng.choice(("buy", "sell"))
        crossing = rng.random() < job["cross_fraction"]
        ticks = Decimal(rng.randint(1, 10)) if not crossing else Decimal(-10)
        # Resting: 1-10 below (buy) or above (sell) the mid. Crossing IOC: 10 through it, so it
        # meets every resting level of the other side.
        price = MID - ticks if side == "buy" else MID + ticks
        quantity = Decimal(rng.randint(1, 10)) / 1000
        tif = "ioc" if crossing else "gtc"
        nonce = job["nonce_base"] + i
        client_order_id = f"l{job['wallet_index']}-{job['nonce_base'] % 10**9}-{i}"
        fields = SignedOrderFields(
            account=wallet, market=MARKET, side=side, orderType="limit",
            price=to_base_units(str(price), quote_dec),
            quantity=to_base_units(str(quantity), base_dec),
            timeInForce=tif, postOnly=False, selfTradePrevention="",
            clientOrderId=client_order_id, nonce=nonce, expiry=expiry,
        )  # fmt: skip
        message = encode_typed_data(
            full_message=typed_data(fields, domain["chainId"], domain["verifyingContract"])
        )
        signature = EthAccount.sign_message(message, key).signature.hex()
        body = {
            "market": MARKET, "side": side, "type": "limit", "price": str(price),
            "quantity": str(quantity), "time_in_force": tif, "post_only": False,
            "client_order_id": client_order_id,
            "nonce": str(nonce),  # a decimal string: above 2**53, see the module docstring
            "expiry": expiry,
            "signature": signature if signature.startswith("0x") else "0x" + signature,
        }  # fmt: skip
        out.append([job["wallet_index"], json.dumps(body, separators=(",", ":"))])
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load.setup", description=__doc__)
    parser.add_argument("--api", default=f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}")
    parser.add_argument("--rpc", default=os.environ.get("CHAIN_RPC_URL", "http://127.0.0.1:8545"))
    parser.add_argument("--wallets", type=int, default=32)
    parser.add_argument("--orders", type=int, default=10_000, help="pre-signed orders in all")
    parser.add_argument("--cross-fraction", type=float, default=0.3)
    parser.add_argument("--credit-timeout", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=VAR / "load" / "orders.json")
    parser.add_argument("--seed", type=int, default=20261205)
    args = parser.parse_args(argv)
    if args.wallets < 1 or args.orders < 1:
        parser.error("--wallets and --orders must be at least 1")

    deployment = Deployment.from_json(json.loads((VAR / "deployment.json").read_text()))
    keys = [EthAccount.create().key for _ in range(args.wallets)]
    addresses = [EthAccount.from_key(k).address for k in keys]
    started = time.monotonic()

    log(f"depositing into the vault from {args.wallets} new wallets")
    with ThreadPoolExecutor(max_workers=min(16, args.wallets)) as pool:
        list(pool.map(lambda a: fund_wallet(args.rpc, deployment, a), addresses))
    log(f"signing in ({time.monotonic() - started:.0f}s)")
    with ThreadPoolExecutor(max_workers=4) as pool:
        clients = list(pool.map(lambda k: sign_in(args.api, k, 120), keys))
    log(f"waiting for the chain watcher to credit the deposits ({time.monotonic() - started:.0f}s)")
    wait_credited(clients, args.credit_timeout)
    raise_limits(addresses)

    market, domain = clients[0].market(MARKET), clients[0].eip712()["domain"]
    per_wallet = -(-args.orders // args.wallets)
    nonce_base = time.time_ns()
    jobs = [
        {
            "key": key,
            "wallet": address,
            "wallet_index": index,
            "domain": domain,
            "market": market,
            "count": per_wallet,
            "cross_fraction": args.cross_fraction,
            "seed": args.seed + index,
            "nonce_base": nonce_base,
        }
        for index, (key, address) in enumerate(zip(keys, addresses, strict=True))
    ]
    log(f"signing {per_wallet * args.wallets} orders ({time.monotonic() - started:.0f}s)")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        chunks = list(pool.map(_sign_chunk, jobs))
    # Interleave the wallets, so consecutive requests come from different accounts.
    orders = [chunk[i] for i in range(per_wallet) for chunk in chunks][: args.orders]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "market": MARKET,
                "addresses": addresses,
                "tokens": [c.token for c in clients],
                "orders": orders,
            }
        )
    )
    log(f"wrote {len(orders)} orders to {args.out} in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
