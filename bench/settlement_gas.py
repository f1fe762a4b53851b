"""Gas per trade of ClearwayVault.settleBatch on anvil, for batches of 1 to 1,000 trades.

    .venv/bin/python -m bench.settlement_gas [--repeats 3] [--accounts 100] [--seed 7]

Starts a private anvil on a free port, deploys the stack, gives every trader account WETH and
USDC in the vault, then settles batches of random WETH-USDC trades between the accounts: each
batch is netted into per-(account, token) deltas with maker/taker fees credited to the fee
account, exactly as exchange.chain sends it. Gas is the settlement transaction's gasUsed (which
includes the 21,000 base and the calldata), so it is deterministic for a given seed; no timing
is measured. Exits 1 if the 1,000-trade batches miss the target of 5,000 gas per trade.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
from dataclasses import dataclass

from eth_utils import keccak
from web3 import Web3

from exchange.chain import (
    Delta,
    Deployment,
    TokenSpec,
    TradeTree,
    Vault,
    deploy_stack,
    encode_deltas,
    mint_test_tokens,
)
from exchange.devstack import services
from exchange.devstack.procs import VAR, free_port

SIZES = (1, 10, 100, 1_000)
TARGET_GAS_PER_TRADE = 5_000
WETH = 10**18
USDC = 10**6
# The demo WETH-USDC market (exchange/markets/management/commands/bootstrap_demo.py).
TICK = 10_000  # 0.01 USDC per WETH
LOT = 10**15  # 0.001 WETH
MAKER_FEE_BPS, TAKER_FEE_BPS = 2, 5
START_WETH, START_USDC = 1_000 * WETH, 10_000_000 * USDC


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: str
    buyer: str
    seller: str
    price: int  # USDC base units per whole WETH, a multiple of TICK
    quantity: int  # WETH base units, a multiple of LOT
    buyer_is_taker: bool


def trade_deltas(trade: Trade, weth: str, usdc: str, fee_account: str) -> list[Delta]:
    """Each side pays its fee in the asset it receives, rounded down, to the fee account."""
    notional = trade.price * trade.quantity // WETH  # exact: TICK * LOT is a multiple of 1e18
    buyer_bps, seller_bps = (
        (TAKER_FEE_BPS, MAKER_FEE_BPS) if trade.buyer_is_taker else (MAKER_FEE_BPS, TAKER_FEE_BPS)
    )
    buyer_fee = trade.quantity * buyer_bps // 10_000
    seller_fee = notional * seller_bps // 10_000
    return [
        Delta(trade.buyer, weth, trade.quantity - buyer_fee),
        Delta(trade.buyer, usdc, -notional),
        Delta(trade.seller, weth, -trade.quantity),
        Delta(trade.seller, usdc, notional - seller_fee),
        Delta(fee_account, weth, buyer_fee),
        Delta(fee_account, usdc, seller_fee),
    ]


def random_trades(rng: random.Random, accounts: list[str], count: int, tag: str) -> list[Trade]:
    trades = []
    for i in range(count):
        buyer, seller = rng.sample(accounts, 2)
        trades.append(
            Trade(
                trade_id=f"{tag}-{i}",
                buyer=buyer,
                seller=seller,
                price=rng.randrange(2_970 * USDC, 3_030 * USDC, TICK),
                quantity=rng.randint(1, 1_000) * LOT,
                buyer_is_taker=rng.random() < 0.5,
            )
        )
    return trades


def fund_traders(w3: Web3, deployment: Deployment, vault: Vault, count: int) -> list[str]:
    """Deterministic trader addresses that anvil lets us send from without their keys."""
    w3.provider.make_request("anvil_autoImpersonateAccount", [True])
    traders = []
    for i in range(count):
        trader = Web3.to_checksum_address(keccak(text=f"clearway-bench-trader-{i}")[-20:])
        w3.provider.make_request("anvil_setBalance", [trader, hex(10**20)])
        for symbol, amount in (("WETH", START_WETH), ("USDC", START_USDC)):
            token = deployment.tokens[symbol]
            mint_test_tokens(w3, token, trader, amount, sender=trader)
            vault.deposit(token, amount, sender=trader)
        traders.append(trader)
    return traders


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def calldata_gas(data: bytes) -> int:
    """Calldata's share of intrinsic gas at 16 per non-zero and 4 per zero byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="batches per size (default 3)")
    parser.add_argument("--accounts", type=int, default=100, help="trader accounts (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    port = free_port()
    anvil = services.start_anvil(port=port, log_dir=VAR / "log" / "bench")
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 60}))
        admin, operator, fee = w3.eth.accounts[:3]
        deployment = deploy_stack(
            w3,
            admin=admin,
            operator=operator,
            fee_account=fee,
            tokens=(TokenSpec("WETH", "Wrapped Ether", 18), TokenSpec("USDC", "USD Coin", 6)),
        )
        vault = deployment.vault_client(w3)
        weth, usdc = deployment.tokens["WETH"], deployment.tokens["USDC"]
        print(f"funding {args.accounts} trader accounts ...", flush=True)
        traders = fund_traders(w3, deployment, vault, args.accounts)

        rng = random.Random(args.seed)
        print(
            f"\nsettleBatch gas on {w3.client_version}, {args.accounts} accounts, "
            f"WETH-USDC, {args.repeats} batches per size, seed {args.seed}"
        )
        print(f"CPU: {cpu_model()} ({os.cpu_count()} cores)\n")
        header = (
            f"{'trades':>7} {'deltas':>7} {'calldata B':>11} {'calldata gas':>13} "
            f"{'gas/batch':>11} {'gas/trade':>10} {'max gas/trade':>14}"
        )
        print(header)
        print("-" * len(header))
        per_trade_at: dict[int, float] = {}
        for size in SIZES:
            gas, deltas, data_bytes, data_gas, worst = [], [], [], [], 0.0
            for _ in range(args.repeats):
                batch_id = vault.next_batch_id()
                trades = random_trades(rng, traders, size, f"b{batch_id}")
                changes = [d for t in trades for d in trade_deltas(t, weth, usdc, fee)]
                tree = TradeTree([t.trade_id for t in trades])
                settled = vault.settle_batch(batch_id, tree.root, changes, sender=operator)
                sample = rng.choice(trades).trade_id
                assert vault.verify_trade(batch_id, sample, tree.proof(sample))
                data = bytes(w3.eth.get_transaction(settled.tx.tx_hash)["input"])
                gas.append(settled.tx.gas_used)
                deltas.append(sum(len(entries) for _, entries in encode_deltas(changes)))
                data_bytes.append(len(data))
                data_gas.append(calldata_gas(data))
                worst = max(worst, settled.tx.gas_used / size)
            per_trade = statistics.mean(gas) / size
            per_trade_at[size] = per_trade
            mean = statistics.mean
            print(
                f"{size:>7,} {mean(deltas):>7,.0f} {mean(data_bytes):>11,.0f} "
                f"{mean(data_gas):>13,.0f} {mean(gas):>11,.0f} {per_trade:>10,.0f} {worst:>14,.0f}"
            )
    finally:
        anvil.stop()

    largest = per_trade_at[SIZES[-1]]
    met = largest < TARGET_GAS_PER_TRADE
    print(
        f"\n{SIZES[-1]:,}-trade batches: {largest:,.0f} gas/trade; target < "
        f"{TARGET_GAS_PER_TRADE:,}: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
