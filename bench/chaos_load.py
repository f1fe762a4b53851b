"""The chaos soak's load: funded traders placing and cancelling signed orders through the REST
API, a probe that measures recovery, and websocket followers of the market stream that keep a
local book by the gap rule of docs/API.md (bench/chaos.py drives them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import requests
import websockets
from web3 import Web3

from exchange.chain import Deployment
from exchange.client import ApiError, ClearwayClient
from exchange.money import to_base_units

MARKET = "WETH-USDC"
FUNDING = {"WETH": Decimal(200), "USDC": Decimal(1_000_000)}
MID = 2000
OPEN_STATES = ("accepted", "open", "partially_filled")


def fund(client: ClearwayClient, w3: Web3, deployment: Deployment) -> None:
    """Real deposits, as the demo market maker makes them: mint, approve, deposit into the
    vault (from the wallet, which anvil has unlocked); the chain watcher credits them."""
    vault = deployment.vault_client(w3)
    for symbol, amount in FUNDING.items():
        units = int(amount * 10 ** deployment.token_decimals[symbol])
        erc20 = deployment.token(w3, symbol)
        tx = erc20.functions.mint(client.address, units).transact({"from": client.address})
        w3.eth.wait_for_transaction_receipt(tx, timeout=60)
        vault.deposit(deployment.tokens[symbol], units, sender=client.address)


def credited(client: ClearwayClient) -> bool:
    try:
        return all(Decimal(client.balance(s)["available"]) >= a for s, a in FUNDING.items())
    except (ApiError, requests.RequestException):
        return False


@dataclass
class LoadStats:
    placed: list[tuple[int, str]] = field(default_factory=list)  # 2xx: (order id, client id)
    cancelled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "2xx", "409 code", "ConnectionError"

    def merge(self, other: LoadStats) -> None:
        self.placed += other.placed
        self.cancelled += other.cancelled
        self.outcomes += other.outcomes


class Trader:
    """One wallet's steady mix: limit orders around the mid (a third of them crossing), some
    IOC, cancels of its own open orders and now and then a cancel-all."""

    def __init__(self, api: str, key: bytes, seed: int, pause: float) -> None:
        self.client = ClearwayClient(api, private_key=key, timeout=10)
        self.rng = random.Random(seed)
        self.pause = pause
        self.open: list[int] = []
        self.stats = LoadStats()

    def step(self) -> None:
        roll = self.rng.random()
        if roll < 0.65 or not self.open:
            self.place()
        elif roll < 0.95 or len(self.open) < 5:
            order_id = self.open.pop(self.rng.randrange(len(self.open)))
            self.client.cancel_order(order_id)
            self.stats.cancelled += 1
        else:
            self.open.clear()
            self.client.cancel_all(market=MARKET)

    def place(self) -> None:
        side = self.rng.choice(["buy", "sell"])
        away = self.rng.randint(-4, 12)  # negative: crosses the other side
        price = MID - away if side == "buy" else MID + away
        quantity = str(Decimal(self.rng.randint(1, 20)) / 100)
        tif = "ioc" if self.rng.random() < 0.15 else "gtc"
        body = self.client.order_body(
            MARKET, side, quantity=quantity, price=str(price), time_in_force=tif
        )
        order = self.client.submit_order(body)
        self.stats.placed.append((int(order["id"]), body["client_order_id"]))
        if tif == "gtc" and order["status"] in OPEN_STATES:
            self.open.append(int(order["id"]))
            if len(self.open) > 25:
                self.client.cancel_order(self.open.pop(0))
                self.stats.cancelled += 1

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
                self.stats.outcomes["2xx"] += 1
            except ApiError as error:
                self.stats.outcomes[f"{error.status} {error.code}"] += 1
                if error.status == 401:
                    self._login()
            except requests.RequestException as error:
                self.stats.outcomes[type(error).__name__] += 1
            stop.wait(self.pause)

    def _login(self) -> None:
        with contextlib.suppress(ApiError, requests.RequestException):
            self.client.login()


def probe(client: ClearwayClient, timeout: float = 5.0) -> bool:
    """One round trip through the API and the matching worker: a post-only bid far below the
    market becomes open (the worker applied it), then is cancelled."""
    try:
        order = client.place_order(MARKET, "buy", quantity="0.01", price="1000", post_only=True)
        deadline = time.monotonic() + timeout
        while order["status"] == "accepted" and time.monotonic() < deadline:
            time.sleep(0.2)
            order = client.order(order["id"])
        if order["status"] == "open":
            client.cancel_order(order["id"])
            return True
        return False
    except ApiError as error:
        if error.status == 401:
            with contextlib.suppress(ApiError, requests.RequestException):
                client.login()
        return False
    except requests.RequestException:
        return False


def checksum(bids: dict[int, int], asks: dict[int, int]) -> int:
    """docs/API.md's top-10 CRC32."""
    top_asks = sorted(asks.items())[:10]
    top_bids = sorted(bids.items(), reverse=True)[:10]
    return zlib.crc32("".join(f"{p}{q}" for p, q in top_asks + top_bids).encode("ascii"))


class Follower:
    """A market-stream client by the book: the gap rule, the checksum, resync on either."""

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        # The websocket server admits only origins of its allowed hosts, as for a browser.
        self.origin = origin
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last: int | None = None
        self.heartbeat: int | None = None  # the server says the stream is complete up to here
        self.waiting = True  # for a snapshot: apply nothing until it comes
        self.counts: Counter[str] = Counter()
        # A checksum that disagrees although prev_event_seq chained: the server's stream itself
        # was wrong (not a gap the protocol lets a client detect).
        self.inconsistent: list[str] = []

    def _load(self, frame: dict) -> None:
        self.bids = {int(p): int(q) for p, q in frame["bids"]}
        self.asks = {int(p): int(q) for p, q in frame["asks"]}
        self.last = int(frame["event_seq"])
        self.waiting = False

    async def handle(self, frame: dict, ws) -> None:  # type: ignore[no-untyped-def]
        kind = frame.get("type")
        if kind == "snapshot":
            self.counts[f"snapshot:{frame.get('reason')}"] += 1
            self._load(frame)
            if checksum(self.bids, self.asks) != frame["checksum"]:
                self.inconsistent.append(f"snapshot at {frame['event_seq']}: bad checksum")
            return
        if kind == "heartbeat":
            self.heartbeat = int(frame["event_seq"])
            return
        if kind not in ("level", "trade") or self.waiting:
            return
        self.counts["frames"] += 1
        if frame["prev_event_seq"] != self.last:
            self.counts["gaps detected"] += 1
            await self._resync(ws)
            return
        if kind == "level":
            book = self.bids if frame["side"] == "buy" else self.asks
            price, quantity = int(frame["price"]), int(frame["quantity"])
            if quantity:
                book[price] = quantity
            else:
                book.pop(price, None)
        self.last = int(frame["event_seq"])
        if checksum(self.bids, self.asks) != frame["checksum"]:
            self.counts["checksum mismatches"] += 1
            self.inconsistent.append(f"{kind} at {frame['event_seq']}: checksum differs")
            await self._resync(ws)

    async def _resync(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.waiting = True
        self.counts["resyncs sent"] += 1
        await ws.send(json.dumps({"op": "resync"}))

    async def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                async with websockets.connect(self.url, origin=self.origin, open_timeout=10) as ws:
                    self.waiting = True
                    while not stop.is_set():
                        try:
                            raw = await asyncio.wait_for(ws.recv(), 1.0)
                        except TimeoutError:
                            continue
                        await self.handle(json.loads(raw), ws)
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.counts["reconnects"] += 1
                await asyncio.sleep(0.5)

    @property
    def position(self) -> int | None:
        """Where this client's book is: its last frame, or further when a later heartbeat says
        nothing was published since (the engine numbers events it does not publish, so REST's
        event_seq may be past the last frame)."""
        if self.last is None:
            return None
        return max(self.last, self.heartbeat or 0)

    def book_equals(self, rest: dict, market: dict) -> bool:
        return (
            not self.waiting and self.position == rest["event_seq"] and self.same_book(rest, market)
        )

    def same_book(self, rest: dict, market: dict) -> bool:
        quote, base = market["quote_decimals"], market["base_decimals"]

        def levels(rows: list[list[str]]) -> dict[int, int]:
            return {to_base_units(p, quote): to_base_units(q, base) for p, q in rows}

        return self.bids == levels(rest["bids"]) and self.asks == levels(rest["asks"])

    def explain(self, rest: dict | None, market: dict) -> str:
        if rest is None:
            return "REST book unavailable"
        same = "same" if self.same_book(rest, market) else "different"
        return (f"at {self.last} (heartbeat {self.heartbeat}, waiting {self.waiting}), REST at "
                f"{rest['event_seq']}, {same} book")  # fmt: skip


def run_followers(followers: list[Follower], stop: threading.Event) -> threading.Thread:
    async def main() -> None:
        await asyncio.gather(*(f.follow(stop) for f in followers))

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True, name="followers")
    thread.start()
    return thread


def followers_verdict(
    followers: list[Follower], api: str, market: dict, timeout: float = 60.0
) -> tuple[bool, str]:
    """Each follower ends on REST's book at REST's event_seq (bounded wait), and never saw a
    frame that chained but disagreed with its checksum."""
    deadline = time.monotonic() + timeout
    pending = list(followers)
    rest = None
    while pending and time.monotonic() < deadline:
        try:
            rest = requests.get(f"{api}/api/v1/markets/{MARKET}/book", timeout=10).json()
        except (requests.RequestException, ValueError):
            time.sleep(1)
            continue
        pending = [f for f in pending if not f.book_equals(rest, market)]
        if pending:
            time.sleep(1)
    details = []
    for i, follower in enumerate(followers):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(follower.counts.items()))
        state = (
            f"stale: {follower.explain(rest, market)}" if follower in pending else "equal to REST"
        )
        details.append(f"ws{i}: {state}; {counts}")
        details += [f"ws{i}: {line}" for line in follower.inconsistent[:3]]
    ok = not pending and not any(f.inconsistent for f in followers)
    return ok, "; ".join(details)
