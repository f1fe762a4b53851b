"""`python -m exchange.devstack.demo`: a demo market maker for the local stack (`make run`).

Two of anvil's well-known dev wallets mint test tokens, deposit them into the vault for real
(the chain watcher credits them once confirmed), sign in with SIWE and trade through the REST
client: one keeps a ladder of resting orders around a drifting mid price, the other takes from it
now and then, so the book moves, trades happen and settlement batches reach the chain. Bounded:
about one order a second, and it stops on SIGTERM/SIGINT like every process `make run` starts.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
from decimal import Decimal

from eth_account import Account as EthAccount
from web3 import Web3

from exchange.chain import Deployment
from exchange.client import ApiError, ClearwayClient
from exchange.devstack.procs import VAR

log = logging.getLogger("clearway.demo")

# anvil's public dev mnemonic; accounts 5 and 6 (0-2 are the deployer, operator and fee account)
# are unlocked on the node and funded with ether, so they can send their own transactions.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_key(index: int) -> bytes:
    EthAccount.enable_unaudited_hdwallet_features()
    return EthAccount.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key


FUNDING = {"WETH": Decimal(100), "USDC": Decimal(500_000)}
MID = Decimal(2000)


class Demo:
    def __init__(self, api: str, rpc: str, deployment: Deployment) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
        self.deployment = deployment
        self.maker = ClearwayClient(api, private_key=anvil_key(5))
        self.taker = ClearwayClient(api, private_key=anvil_key(6))
        self.rng = random.Random(7)
        self.mid = MID

    def fund(self, client: ClearwayClient) -> None:
        """Real deposits: mint, approve and deposit into the vault, then wait for the credit."""
        vault = self.deployment.vault_client(self.w3)
        for symbol, amount in FUNDING.items():
            if Decimal(client.balance(symbol)["total"]) >= amount / 2:
                continue
            units = int(amount * 10 ** self.deployment.token_decimals[symbol])
            token = self.deployment.tokens[symbol]
            send_from = client.address
            erc20 = self.deployment.token(self.w3, symbol)
            self.w3.eth.wait_for_transaction_receipt(
                erc20.functions.mint(send_from, units).transact({"from": send_from})
            )
            vault.deposit(token, units, sender=send_from)
            log.info("%s deposited %s %s into the vault", send_from, amount, symbol)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if all(Decimal(client.balance(s)["available"]) >= a / 2 for s, a in FUNDING.items()):
                return
            time.sleep(1)
        log.warning("%s: deposits not credited yet; is the chain watcher running?", client.address)

    def setup(self) -> None:
        for client in (self.maker, self.taker):
            client.login()
            self.fund(client)

    def quote(self) -> None:
        """Refresh the maker's ladder: cancel what is open, place five levels a side."""
        self.maker.cancel_all(market="WETH-USDC")
        self.mid += Decimal(self.rng.randint(-5, 5))
        for level in range(1, 6):
            size = str(Decimal(self.rng.randint(1, 20)) / 10)
            spread = Decimal(level) * Decimal("0.5")
            self.maker.place_order("WETH-USDC", "buy", quantity=size, price=str(self.mid - spread))
            self.maker.place_order("WETH-USDC", "sell", quantity=size, price=str(self.mid + spread))

    def take(self) -> None:
        side = self.rng.choice(["buy", "sell"])
        limit = self.mid + 5 if side == "buy" else self.mid - 5
        size = str(Decimal(self.rng.randint(1, 5)) / 10)
        self.taker.place_order(
            "WETH-USDC", side, quantity=size, price=str(limit), time_in_force="ioc"
        )

    def run(self, should_stop) -> None:  # type: ignore[no-untyped-def]
        while not should_stop():
            try:
                self.setup()
                break
            except Exception:  # the API or chain may still be starting: try again shortly
                log.exception("demo set-up failed; retrying")
                time.sleep(2)
        tick = 0
        while not should_stop():
            try:
                if tick % 10 == 0:
                    self.quote()
                elif tick % 3 == 0:
                    self.take()
            except ApiError as error:
                log.warning("demo order refused: %s", error)
            except Exception:
                log.exception("demo step failed; continuing")
            tick += 1
            time.sleep(1)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    api = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
    rpc = os.environ.get("CHAIN_RPC_URL", "http://127.0.0.1:8545")
    deployment = Deployment.from_json(json.loads((VAR / "deployment.json").read_text()))
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    Demo(api, rpc, deployment).run(lambda: stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())
