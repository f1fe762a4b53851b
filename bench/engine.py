"""Matching engine benchmark: Clearway's engine against other Python order books, same stream.

    .venv/bin/python bench/engine.py                   # 1,000,000 commands, 5 runs, all libraries
    .venv/bin/python bench/engine.py --profile shallow # the same on a thin book
    .venv/bin/python bench/engine.py --commands 200000 --runs 3 --libs clearway,naive

The stream is seeded and generated once per invocation by simulating it on the naive reference
book, so cancels and replaces target orders that are actually open, and taker accounts are chosen
so that no order ever meets an order of its own account (the other libraries have no self-trade
prevention; with no self-trades every library must produce the same fills, which the script
checks). Mix: ~25% cancels, ~10% replaces (60% amend-down keeping priority, 40% a price move of
1-3 ticks), ~10% market orders, ~10% marketable limits (40% of them IOC), the rest passive
limits near the mid. Profiles (``PROFILES``): "deep" (default) holds ~10,000 open orders over
~150 levels a side; "shallow" lets the book thin out to ~100 orders near the touch.

Every library runs the identical command list through its own public API; where a library lacks
an operation the adapter composes it from what it has (for example IOC = place, then cancel the
remainder) and that cost is counted, as it would be in use. Commands are built before timing
starts. Throughput runs time the whole loop; a separate run wraps every command in
``time.perf_counter_ns`` for latency percentiles (the timer's own ~70 ns included). The garbage
collector: after the streams are built, ``gc.freeze()`` moves them to the permanent generation so
collections do not traverse a million prebuilt commands, and the gen-0 threshold is raised
(``--gc-threshold``); the same settings apply to every library. Memory per 100,000 resting orders
is measured in fresh subprocesses (tracemalloc for Python allocations, then RSS growth without
tracemalloc); it includes any id map an adapter must keep because the library assigns its own
order ids.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sortedcontainers import SortedDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Stream operations: plain tuples, converted per library before timing.
LIMIT, MARKET, CANCEL, REPLACE = 0, 1, 2, 3
# (LIMIT, seq, order_id, account, is_buy, price, quantity, ioc)
# (MARKET, seq, order_id, account, is_buy, quantity)
# (CANCEL, seq, order_id, account)
# (REPLACE, seq, order_id, account, new_price, new_total, new_remaining, priority_kept)
Op = tuple

MID = 100_000
MAX_PRICE = 10_000_000


# --------------------------------------------------------------------------------------------
# Naive reference: a SortedDict of price -> deque, the simplest correct price-time book.
# --------------------------------------------------------------------------------------------


class NaiveBook:
    """Price-time book with no validation and no events beyond a list of fills.

    Orders are lists [order_id, account, is_buy, price, remaining, filled]. Cancel removes the
    order from its deque by search, which is what "naive" means here.
    """

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[int, list] = {}

    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None

    def _take(self, is_buy: bool, limit: int | None, quantity: int, fills: list) -> int:
        levels = self.asks if is_buy else self.bids
        orders = self.orders
        while quantity and levels:
            price, queue = levels.peekitem(0 if is_buy else -1)
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            while quantity and queue:
                maker = queue[0]
                traded = min(quantity, maker[4])
                maker[4] -= traded
                maker[5] += traded
                quantity -= traded
                fills.append((maker[0], price, traded))
                if not maker[4]:
                    queue.popleft()
                    del orders[maker[0]]
            if not queue:
                del levels[price]
        return quantity

    def _rest(self, order: list) -> None:
        levels = self.bids if order[2] else self.asks
        queue = levels.get(order[3])
        if queue is None:
            queue = levels[order[3]] = deque()
        queue.append(order)
        self.orders[order[0]] = order

    def limit(self, order_id: int, account: int, is_buy: bool, price: int, qty: int, ioc: bool):
        fills: list = []
        remaining = self._take(is_buy, price, qty, fills)
        if remaining and not ioc:
            self._rest([order_id, account, is_buy, price, remaining, qty - remaining])
        return fills

    def market(self, order_id: int, account: int, is_buy: bool, quantity: int):
        fills: list = []
        self._take(is_buy, None, quantity, fills)
        return fills

    def cancel(self, order_id: int) -> bool:
        order = self.orders.pop(order_id, None)
        if order is None:
            return False
        levels = self.bids if order[2] else self.asks
        queue = levels[order[3]]
        queue.remove(order)
        if not queue:
            del levels[order[3]]
        return True

    def replace(self, order_id: int, new_price: int, new_remaining: int, keep: bool):
        order = self.orders.get(order_id)
        if order is None:
            return None
        if keep:
            order[4] = new_remaining
            return []
        self.cancel(order_id)
        fills: list = []
        remaining = self._take(order[2], new_price, new_remaining, fills)
        if remaining:
            # Filled so far: before the replace, plus what it just took as a taker.
            filled = order[5] + new_remaining - remaining
            self._rest([order_id, order[1], order[2], new_price, remaining, filled])
        return fills

    def makers_hit(self, is_buy: bool, limit: int | None, quantity: int) -> set[int]:
        """Accounts of the resting orders a taker would meet (for self-trade avoidance)."""
        levels = self.asks if is_buy else self.bids
        prices = levels.keys() if is_buy else reversed(levels.keys())
        accounts: set[int] = set()
        for price in prices:
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            for maker in levels[price]:
                accounts.add(maker[1])
                quantity -= maker[4]
                if quantity <= 0:
                    return accounts
        return accounts


# --------------------------------------------------------------------------------------------
# Stream
# --------------------------------------------------------------------------------------------


PROFILES = {
    # A steady, deep book: ~10,000 open orders over hundreds of levels a side. Cancels scale
    # with the book's size (as real cancellations do: each resting order has a hazard rate),
    # which holds the book near the target; ~20% of passive orders land in a power-law tail away
    # from the touch (the distance of limit orders from the best quote is heavy-tailed:
    # Zovko & Farmer 2002, Bouchaud et al. 2002).
    "deep": {"target_book": 10_000, "tail": 0.2},
    # No size control and no tail: a thin book of ~100 orders near the touch.
    "shallow": {"target_book": None, "tail": 0.0},
}


def generate_stream(n: int, seed: int, profile: str = "deep") -> list[Op]:
    rng = random.Random(seed)
    target_book = PROFILES[profile]["target_book"]
    tail = PROFILES[profile]["tail"]
    book = NaiveBook()
    ops: list[Op] = []
    live: list[int] = []  # open order ids, for uniform random picks
    index: dict[int, int] = {}  # order id -> position in live

    def add_live(order_id: int) -> None:
        index[order_id] = len(live)
        live.append(order_id)

    def drop_live(order_id: int) -> None:
        i = index.pop(order_id, None)
        if i is None:
            return
        last = live.pop()
        if last != order_id:
            live[i] = last
            index[last] = i

    def apply_fills(fills: list) -> None:
        for maker_id, _, _ in fills:
            if maker_id not in book.orders:
                drop_live(maker_id)

    def taker_account(is_buy: bool, limit: int | None, qty: int) -> int:
        hit = book.makers_hit(is_buy, limit, qty)
        while True:
            account = rng.randrange(1, 2_001)
            if account not in hit:
                return account

    def qty(mean: float) -> int:
        return 1 + int(rng.expovariate(1 / mean))

    seq = 0
    while seq < n:
        seq += 1
        bid, ask = book.best_bid(), book.best_ask()
        mid = (bid + ask) // 2 if bid and ask else (bid + 2 if bid else ask - 2 if ask else MID)
        r = rng.random()
        p_cancel = 0.25
        if target_book is not None:
            p_cancel = 0.25 * min(2.0, len(live) / target_book)
        if r < p_cancel and live:
            order_id = live[rng.randrange(len(live))]
            ops.append((CANCEL, seq, order_id, book.orders[order_id][1]))
            book.cancel(order_id)
            drop_live(order_id)
        elif r < p_cancel + 0.10 and live:
            order_id = live[rng.randrange(len(live))]
            order = book.orders[order_id]
            _, account, is_buy, price, remaining, filled = order
            if remaining > 1 and rng.random() < 0.6:
                new_remaining = rng.randint(1, remaining - 1)
                ops.append(
                    (REPLACE, seq, order_id, account, price, filled + new_remaining,
                     new_remaining, True)
                )  # fmt: skip
                book.replace(order_id, price, new_remaining, True)
            else:
                new_price = max(1, price + rng.choice((-3, -2, -1, 1, 2, 3)))
                new_remaining = remaining + (rng.randint(0, 3) if rng.random() < 0.3 else 0)
                if account in book.makers_hit(is_buy, new_price, new_remaining):
                    # It would meet its own account's order: move it to the touch instead.
                    new_price = max(1, ask - 1) if is_buy else bid + 1
                if new_price == price:
                    new_remaining = remaining + 1  # an unchanged price must lose priority
                ops.append(
                    (REPLACE, seq, order_id, account, new_price, filled + new_remaining,
                     new_remaining, False)
                )  # fmt: skip
                fills = book.replace(order_id, new_price, new_remaining, False)
                apply_fills(fills)
                if order_id not in book.orders:
                    drop_live(order_id)
        elif r < p_cancel + 0.20:
            is_buy = rng.random() < 0.5
            quantity = qty(12)
            account = taker_account(is_buy, None, quantity)
            ops.append((MARKET, seq, seq, account, is_buy, quantity))
            apply_fills(book.market(seq, account, is_buy, quantity))
        elif r < p_cancel + 0.30:
            is_buy = rng.random() < 0.5
            ioc = rng.random() < 0.4
            quantity = qty(10)
            if is_buy:
                price = (ask if ask else mid) + rng.randint(0, 2)
            else:
                price = max(1, (bid if bid else mid) - rng.randint(0, 2))
            account = taker_account(is_buy, price, quantity)
            ops.append((LIMIT, seq, seq, account, is_buy, price, quantity, ioc))
            apply_fills(book.limit(seq, account, is_buy, price, quantity, ioc))
            if seq in book.orders:
                add_live(seq)
        else:
            is_buy = rng.random() < 0.5
            if rng.random() < tail:
                offset = min(5_000, int(4 * rng.paretovariate(1.0)))
            else:
                offset = int(rng.expovariate(1 / 6))
            if is_buy:
                price = mid - 1 - offset
                if ask:
                    price = min(price, ask - 1)
            else:
                price = mid + 1 + offset
                if bid:
                    price = max(price, bid + 1)
            price = max(1, price)
            quantity = qty(10)
            account = taker_account(is_buy, price, quantity)
            ops.append((LIMIT, seq, seq, account, is_buy, price, quantity, False))
            apply_fills(book.limit(seq, account, is_buy, price, quantity, False))
            if seq in book.orders:
                add_live(seq)
    return ops


def stream_summary(ops: list[Op]) -> dict[str, int]:
    counts = {"limit_gtc": 0, "limit_ioc": 0, "market": 0, "cancel": 0, "replace": 0}
    for op in ops:
        if op[0] == LIMIT:
            counts["limit_ioc" if op[7] else "limit_gtc"] += 1
        elif op[0] == MARKET:
            counts["market"] += 1
        elif op[0] == CANCEL:
            counts["cancel"] += 1
        else:
            counts["replace"] += 1
    return counts


# --------------------------------------------------------------------------------------------
# Adapters: prepare(ops) builds per-library inputs (untimed); run(prepared) applies them and
# returns (filled volume, fills) when asked to count.
# --------------------------------------------------------------------------------------------


class Adapter:
    name = ""
    kind = ""  # "subject", "reference", "pure-python", "compiled"
    package = ""

    def available(self) -> bool:
        return True

    def prepare(self, ops: list[Op]) -> Any:
        return ops

    def new(self, capacity: int = 0) -> Any:
        """A fresh book; ``capacity`` is a hint of how many orders it will hold."""
        raise NotImplementedError

    def open_orders(self, state: Any) -> int:
        raise NotImplementedError

    def step_fn(self, state: Any) -> Callable[[Any], Any]:
        """A one-argument function applying one prepared command and returning its result."""
        raise NotImplementedError

    def volume(self, result: Any) -> tuple[int, int]:
        """(filled quantity, number of fills) in one command's result."""
        raise NotImplementedError


def passive_orders(n: int) -> list[Op]:
    rng = random.Random(7)
    ops = []
    for i in range(1, n + 1):
        is_buy = i % 2 == 0
        offset = 1 + rng.randrange(1_000)
        price = MID - offset if is_buy else MID + offset
        ops.append((LIMIT, i, i, 1 + i % 2_000, is_buy, price, 1 + rng.randrange(50), False))
    return ops


class ClearwayAdapter(Adapter):
    name = "clearway"
    kind = "subject"

    def prepare(self, ops: list[Op]) -> list[Any]:
        from exchange.matching import (
            CancelOrder,
            OrderType,
            PlaceOrder,
            ReplaceOrder,
            Side,
            TimeInForce,
        )

        out: list[Any] = []
        for op in ops:
            code, seq = op[0], op[1]
            ts = seq * 1_000
            if code == LIMIT:
                out.append(
                    PlaceOrder(
                        seq=seq,
                        timestamp=ts,
                        order_id=op[2],
                        account=op[3],
                        side=Side.BUY if op[4] else Side.SELL,
                        price=op[5],
                        quantity=op[6],
                        time_in_force=TimeInForce.IOC if op[7] else None,
                    )
                )
            elif code == MARKET:
                out.append(
                    PlaceOrder(
                        seq=seq,
                        timestamp=ts,
                        order_id=op[2],
                        account=op[3],
                        side=Side.BUY if op[4] else Side.SELL,
                        quantity=op[5],
                        order_type=OrderType.MARKET,
                    )
                )
            elif code == CANCEL:
                out.append(CancelOrder(seq=seq, timestamp=ts, order_id=op[2], account=op[3]))
            else:
                _, _, order_id, account, price, total, _, keep = op
                out.append(
                    ReplaceOrder(
                        seq=seq,
                        timestamp=ts,
                        order_id=order_id,
                        account=account,
                        price=None if keep else price,
                        quantity=total,
                    )
                )
        return out

    def new(self, capacity: int = 0) -> Any:
        from exchange.matching import MarketSpec, MatchingEngine

        return MatchingEngine(MarketSpec(symbol="BENCH", tick_size=1, lot_size=1))

    def open_orders(self, state: Any) -> int:
        return len(state.book.orders)

    def step_fn(self, state: Any) -> Callable[[Any], Any]:
        return state.submit

    def volume(self, result: Any) -> tuple[int, int]:
        fills = [e for e in result if e.type == "fill"]
        return sum(e.quantity for e in fills), len(fills)


class NaiveAdapter(Adapter):
    name = "naive"
    kind = "reference"
    package = "SortedDict of deques, in bench/engine.py"

    def new(self, capacity: int = 0) -> Any:
        return NaiveBook()

    def open_orders(self, state: Any) -> int:
        return len(state.orders)

    def step_fn(self, book: NaiveBook) -> Callable[[Any], Any]:
        limit, market, cancel, replace = book.limit, book.market, book.cancel, book.replace

        def step(op: Op) -> Any:
            code = op[0]
            if code == LIMIT:
                return limit(op[2], op[3], op[4], op[5], op[6], op[7])
            if code == MARKET:
                return market(op[2], op[3], op[4], op[5])
            if code == CANCEL:
                return cancel(op[2])
            return replace(op[2], op[4], op[6], op[7])

        return step

    def volume(self, result: Any) -> tuple[int, int]:
        if not isinstance(result, list):
            return 0, 0
        return sum(f[2] for f in result), len(result)


class PyOrderBookAdapter(Adapter):
    """pyorderbook: Decimal prices, uuid4 ids, a heap of levels of dict queues.

    No IOC or market orders: a market order is a limit at an extreme price and any IOC remainder
    is cancelled. Amend-down sets the order's public ``quantity`` (keeps priority); a price move
    is cancel + new order.
    """

    name = "pyorderbook"
    kind = "pure-python"
    package = "pyorderbook==0.4.9"

    def available(self) -> bool:
        try:
            import pyorderbook  # noqa: F401
        except ImportError:
            return False
        return True

    def open_orders(self, state: Any) -> int:
        return len(state[0].order_map)

    def new(self, capacity: int = 0) -> Any:
        import logging

        import pyorderbook

        # pyorderbook calls logging.basicConfig(INFO) at import; its debug calls stay cheap.
        logging.getLogger("pyorderbook.book").setLevel(logging.INFO)
        return (pyorderbook.Book(), {})

    def step_fn(self, state: Any) -> Callable[[Any], Any]:
        from pyorderbook import Order, Side

        book, ids = state
        match, cancel = book.match, book.cancel
        order_map = book.order_map
        bid, ask = Side.BID, Side.ASK

        def step(op: Op) -> Any:
            code = op[0]
            if code == LIMIT:
                order = Order(bid if op[4] else ask, "X", op[5], op[6])
                blotter = match(order)
                if order.quantity:
                    if op[7]:
                        cancel(order)
                    else:
                        ids[op[2]] = order
                return blotter.trades
            if code == MARKET:
                order = Order(bid if op[4] else ask, "X", MAX_PRICE if op[4] else 1, op[5])
                blotter = match(order)
                if order.quantity:
                    cancel(order)
                return blotter.trades
            order = ids.get(op[2])
            if order is None or order.id not in order_map:
                ids.pop(op[2], None)
                return None
            if code == CANCEL:
                cancel(order)
                del ids[op[2]]
                return None
            _, _, order_id, _, price, _, new_remaining, keep = op
            if keep:
                order.quantity = new_remaining
                return []
            cancel(order)
            new = Order(order.side, "X", price, new_remaining)
            blotter = match(new)
            if new.quantity:
                ids[order_id] = new
            else:
                del ids[order_id]
            return blotter.trades

        return step

    def volume(self, result: Any) -> tuple[int, int]:
        if not result:
            return 0, 0
        return sum(t.fill_quantity for t in result), len(result)


class LightMatchingEngineAdapter(Adapter):
    """lightmatchingengine: float-free if given ints; assigns its own order ids.

    Its trade list holds one aggregated entry for the taker per level plus one per maker; we
    count the maker entries as fills. Market order = price 0; remainders are cancelled. Its
    cancel of an already filled order fails an assertion, so the adapter checks ``leaves_qty``
    first (filled orders are never removed from its id map: that is the library's behaviour).
    """

    name = "lightmatchingengine"
    kind = "pure-python"
    package = "lightmatchingengine==2019.1.4"

    def available(self) -> bool:
        try:
            import lightmatchingengine  # noqa: F401
        except ImportError:
            return False
        return True

    def open_orders(self, state: Any) -> int:
        engine = state[0]
        return sum(1 for o in engine.order_books["X"].order_id_map.values() if o.leaves_qty)

    def new(self, capacity: int = 0) -> Any:
        from lightmatchingengine.lightmatchingengine import LightMatchingEngine

        return (LightMatchingEngine(), {})

    def step_fn(self, state: Any) -> Callable[[Any], Any]:
        from lightmatchingengine.lightmatchingengine import Side

        engine, ids = state
        add, cancel = engine.add_order, engine.cancel_order
        buy, sell = Side.BUY, Side.SELL

        def step(op: Op) -> Any:
            code = op[0]
            if code == LIMIT:
                order, trades = add("X", op[5], op[6], buy if op[4] else sell)
                if order.leaves_qty:
                    if op[7]:
                        cancel(order.order_id, "X")
                    else:
                        ids[op[2]] = order
                return (order.order_id, trades)
            if code == MARKET:
                order, trades = add("X", 0, op[5], buy if op[4] else sell)
                if order.leaves_qty:
                    cancel(order.order_id, "X")
                return (order.order_id, trades)
            order = ids.get(op[2])
            if order is None or not order.leaves_qty:
                ids.pop(op[2], None)
                return None
            if code == CANCEL:
                cancel(order.order_id, "X")
                del ids[op[2]]
                return None
            _, _, order_id, _, price, _, new_remaining, keep = op
            if keep:
                order.leaves_qty = new_remaining
                return None
            cancel(order.order_id, "X")
            new, trades = add("X", price, new_remaining, order.side)
            if new.leaves_qty:
                ids[order_id] = new
            else:
                del ids[order_id]
            return (new.order_id, trades)

        return step

    def volume(self, result: Any) -> tuple[int, int]:
        if not result:
            return 0, 0
        taker_id, trades = result
        makers = [t for t in trades if t.order_id != taker_id]
        return sum(t.trade_qty for t in makers), len(makers)


class OBookAdapter(Adapter):
    """obook: a C engine behind ctypes (compiled reference). Integer ticks and lots, GTC/IOC,
    market orders, reduce (keeps priority) and replace. Events are drained after every command,
    as our engine returns them per command."""

    name = "obook"
    kind = "compiled"
    package = "obook==0.1.0"

    def available(self) -> bool:
        try:
            import obook  # noqa: F401
        except (ImportError, OSError):
            return False
        return True

    def open_orders(self, state: Any) -> int:
        return len(state[0].book())

    def new(self, capacity: int = 0) -> Any:
        import obook

        # obook preallocates its order pool: size it to the run.
        return (obook.Book(max_orders=capacity or 2_000_000), {})

    def step_fn(self, state: Any) -> Callable[[Any], Any]:
        import obook

        book, ids = state
        submit, cancel, reduce, replace, events = (
            book.submit,
            book.cancel,
            book.reduce,
            book.replace,
            book.events,
        )
        BUY, SELL, MARKET_, IOC, GTC = obook.BUY, obook.SELL, obook.MARKET, obook.IOC, obook.GTC

        def step(op: Op) -> Any:
            code = op[0]
            if code == LIMIT:
                r = submit(op[3], BUY if op[4] else SELL, op[5], op[6], tif=IOC if op[7] else GTC)
                if not op[7]:
                    ids[op[2]] = (r.order_id, op[3], op[4], 0)
                return events()
            if code == MARKET:
                submit(op[3], BUY if op[4] else SELL, 0, op[5], type=MARKET_, tif=IOC)
                return events()
            entry = ids.pop(op[2], None)
            if entry is None:
                return None
            # offset: what the stream's order had filled before obook's order was (re)created;
            # obook's own "total" counts only its order's fills.
            native, user, is_buy, offset = entry
            if code == CANCEL:
                cancel(native, user)
                return events()
            _, _, order_id, _, price, total, new_remaining, keep = op
            if keep:
                reduce(native, total - offset, user)
                ids[order_id] = entry
                return events()
            r = replace(native, user, BUY if is_buy else SELL, price, new_remaining)
            if r.order_id:
                ids[order_id] = (r.order_id, user, is_buy, total - new_remaining)
            return events()

        return step

    def volume(self, result: Any) -> tuple[int, int]:
        if not result:
            return 0, 0
        trades = [e for e in result if e.kind == 3]
        return sum(e.qty for e in trades), len(trades)


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        ClearwayAdapter(),
        NaiveAdapter(),
        PyOrderBookAdapter(),
        LightMatchingEngineAdapter(),
        OBookAdapter(),
    )
}


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def throughput_run(adapter: Adapter, prepared: list[Any]) -> float:
    state = adapter.new()
    step = adapter.step_fn(state)
    gc.collect()
    start = time.perf_counter()
    for item in prepared:
        step(item)
    elapsed = time.perf_counter() - start
    del state, step
    gc.collect()
    return len(prepared) / elapsed


def latency_run(adapter: Adapter, prepared: list[Any]) -> tuple[list[int], list[int], int]:
    """Per-command latencies (ns), per-command filled quantities, and the number of fills."""
    state = adapter.new()
    step = adapter.step_fn(state)
    clock = time.perf_counter_ns
    latencies = [0] * len(prepared)
    volumes = [0] * len(prepared)
    fills = 0
    count = adapter.volume
    gc.collect()
    for i, item in enumerate(prepared):
        start = clock()
        result = step(item)
        latencies[i] = clock() - start
        volumes[i], f = count(result)
        fills += f
    del state, step
    gc.collect()
    return latencies, volumes, fills


def cpu_latency_run(adapter: Adapter, prepared: list[Any]) -> list[int]:
    """Per-command time on this thread's CPU clock: excludes time the process was not running
    (preemption by other work on a shared machine), includes the clock's ~0.65 us syscall."""
    state = adapter.new()
    step = adapter.step_fn(state)
    clock = time.thread_time_ns
    latencies = [0] * len(prepared)
    gc.collect()
    for i, item in enumerate(prepared):
        start = clock()
        step(item)
        latencies[i] = clock() - start
    del state, step
    gc.collect()
    return latencies


def percentile(sorted_values: list[int], q: float) -> float:
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index] / 1_000  # microseconds


def memory_child(name: str, n: int, mode: str) -> None:
    """Run in a fresh process: memory held by a book with n resting orders.

    The inputs are built before the baseline is taken, and results are discarded, so only what
    the library keeps counts. ``mode`` is "tracemalloc" (Python allocations) or "rss" (resident
    set growth, measured without tracemalloc, whose bookkeeping would inflate it).
    """
    adapter = ADAPTERS[name]
    ops = passive_orders(n)  # kept alive: freed input memory would be reused by the book
    items = adapter.prepare(ops)
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    else:
        base = _rss()
    state = adapter.new(capacity=n)
    step = adapter.step_fn(state)
    for item in items:
        step(item)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base if mode == "tracemalloc" else _rss() - base
    print(json.dumps({"bytes": used, "open": adapter.open_orders(state), "inputs": len(ops)}))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_per_100k(name: str) -> dict[str, int] | None:
    out: dict[str, int] = {}
    for mode in ("tracemalloc", "rss"):
        result = subprocess.run(
            [sys.executable, __file__, "--memory-child", name, "--memory-mode", mode],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            print(f"  memory measurement failed for {name}: {result.stderr[-300:]}")
            return None
        data = json.loads(result.stdout.strip().splitlines()[-1])
        if data["open"] != 100_000:
            print(f"  {name} holds {data['open']} orders, not 100,000: memory not reported")
            return None
        out[mode] = data["bytes"]
    return out


def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()} "
        f"({platform.python_implementation()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="deep")
    parser.add_argument("--runs", type=int, default=5, help="throughput runs per library")
    parser.add_argument("--libs", default=",".join(ADAPTERS), help="comma-separated")
    parser.add_argument("--gc-threshold", type=int, default=50_000, help="gen-0; 0 = default")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-mode", default="tracemalloc", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_child:
        memory_child(args.memory_child, 100_000, args.memory_mode)
        return

    names = [n for n in args.libs.split(",") if n]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start")
    invoked = ["-m", "bench.engine"] if __spec__ is not None else [sys.argv[0]]
    print(f"command: .venv/bin/python {' '.join([*invoked, *sys.argv[1:]])}")
    started = time.perf_counter()
    ops = generate_stream(args.commands, args.seed, args.profile)
    summary = stream_summary(ops)
    print(
        f"stream: {len(ops):,} commands, seed {args.seed}, profile {args.profile}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.items())
        + f" (generated in {time.perf_counter() - started:.1f}s)"
    )
    prepared = {}
    for name in names:
        adapter = ADAPTERS[name]
        if not adapter.available():
            print(f"  {name}: not installed (pip install -r bench/requirements.txt), skipped")
            continue
        prepared[name] = adapter.prepare(ops)
    del ops
    gc.collect()
    gc.freeze()  # the prebuilt streams live in the permanent generation
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, 10, 10)
    print(f"gc: freeze after building the streams, threshold {gc.get_threshold()}")

    # Throughput runs go round-robin over the libraries, so that load from other processes on
    # this shared machine falls on all of them alike and the ratios stay meaningful.
    rates: dict[str, list[float]] = {name: [] for name in prepared}
    for run in range(args.runs):
        for name, items in prepared.items():
            rates[name].append(throughput_run(ADAPTERS[name], items))
        print(
            f"run {run + 1}/{args.runs}: "
            + ", ".join(f"{name} {rates[name][-1]:,.0f}" for name in prepared)
            + f" cmd/s (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    results: dict[str, dict[str, Any]] = {}
    for name, items in prepared.items():
        adapter = ADAPTERS[name]
        latencies, volumes, fills = latency_run(adapter, items)
        volume = sum(volumes)
        latencies.sort()
        results[name] = {
            "rates": rates[name],
            "median": statistics.median(rates[name]),
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "p999": percentile(latencies, 0.999),
            "max": latencies[-1] / 1_000,
            "volume": volume,
            "volumes": volumes,
            "fills": fills,
        }
        r = results[name]
        print(
            f"{name:>20}: median {r['median']:>10,.0f} cmd/s"
            f" | p50 {r['p50']:.1f}us p99 {r['p99']:.1f}us p99.9 {r['p999']:.1f}us "
            f"max {r['max']:.0f}us | filled {volume:,} lots in {fills:,} fills"
            f" (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )

    if "clearway" in prepared:
        cpu = sorted(cpu_latency_run(ADAPTERS["clearway"], prepared["clearway"]))
        print(
            "clearway on the thread CPU clock (no preemption; +~0.65us clock syscall): "
            f"p50 {percentile(cpu, 0.5):.1f}us p99 {percentile(cpu, 0.99):.1f}us "
            f"p99.9 {percentile(cpu, 0.999):.1f}us max {cpu[-1] / 1_000:.0f}us",
            flush=True,
        )

    if not args.no_memory:
        for name in results:
            mem = memory_per_100k(name)
            results[name]["memory"] = mem

    print()
    print(
        "| library | kind | commands/s (median) | vs clearway | clearway / it | p50 us | p99 us"
        " | p99.9 us | MB per 100k resting (tracemalloc / RSS) | filled lots |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    base = results.get("clearway", {}).get("median")
    for name, r in results.items():
        adapter = ADAPTERS[name]
        mem = r.get("memory")
        mem_text = f"{mem['tracemalloc'] / 1e6:.1f} / {mem['rss'] / 1e6:.1f}" if mem else "n/a"
        ratio = f"{r['median'] / base:.2f}x" if base else "n/a"
        inverse = f"{base / r['median']:.2f}x" if base else "n/a"
        print(
            f"| {name} ({adapter.package or 'exchange.matching'}) | {adapter.kind} | "
            f"{r['median']:,.0f} | {ratio} | {inverse} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['p999']:.1f} | {mem_text} | {r['volume']:,} |"
        )
    # Same work: every library must fill the same quantity on every command.
    print()
    names_run = list(results)
    reference = results[names_run[0]]["volumes"]
    mismatched = False
    for name in names_run[1:]:
        theirs = results[name]["volumes"]
        if theirs != reference:
            mismatched = True
            first = next(
                i for i, (a, b) in enumerate(zip(reference, theirs, strict=True)) if a != b
            )
            print(
                f"check: {name} FILLS DIFFERENTLY from {names_run[0]}, first at command "
                f"{first} ({reference[first]} vs {theirs[first]} lots)"
            )
    if not mismatched:
        print("check: every library filled the same quantity on every command")
    pure = [n for n in results if ADAPTERS[n].kind == "pure-python"]
    if base and pure:
        fastest = max(pure, key=lambda n: results[n]["median"])
        per_round = [
            rates["clearway"][i] / max(rates[n][i] for n in pure) for i in range(args.runs)
        ]
        print(
            f"clearway / fastest pure-Python library ({fastest}): "
            f"{base / results[fastest]['median']:.2f}x on medians; per-round ratios "
            + " ".join(f"{x:.2f}" for x in per_round)
            + f", median {statistics.median(per_round):.2f}x"
        )
    print(
        f"total time {time.perf_counter() - started:.0f}s; "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )


if __name__ == "__main__":
    main()
