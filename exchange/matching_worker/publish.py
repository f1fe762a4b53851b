"""After a batch commits: events to Channels groups and the depth snapshot to Redis.

Websocket payloads carry integers in base units, like every other process boundary; every
message is one of exchange.realtime.messages. A market message carries the engine positions its
batch starts from (``prev_event_seq``) and ends at (``event_seq``), and is sent for every batch
(even one without public events) so the positions chain: a consumer that sees a batch start
past its position knows it missed one and resends the snapshot. One group message per group and
batch keeps Redis round trips per batch, not per event.

Publishing is best effort: the database is the truth and a client that misses a message resyncs.
A failure here, or a batch dropped by a publisher too far behind, is logged and counted
(clearway_realtime_messages_lost_total) and never undoes or repeats the committed batch.

Two ways to publish a committed batch:

- ``publish_now`` (the default for an in-process ``Worker``): right away, on the committing
  thread, with the settings of the moment — what tests that drain a worker and then read the
  socket or the snapshot need.
- ``BackgroundPublisher`` (the worker process): a thread with its own event loop and Redis
  connections, fed in commit order. Batches that queue up while it sends are merged (events
  concatenated per group in order, the newest depth snapshot and balances), so a busy
  worker sends fewer, larger messages instead of falling behind, and matching never waits on
  Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from exchange.ledger.services import BalanceChange
from exchange.matching import MatchingEngine
from exchange.matching_worker.effects import NewTrade
from exchange.realtime import bus, metrics
from exchange.realtime.messages import (
    GroupMessage,
    MarketEvent,
    UserEvent,
    account_group,
    market_events,
    market_group,
    user_events,
)

log = logging.getLogger(__name__)

DEPTH_LEVELS = 50
SEND_CONCURRENCY = 16


__all__ = ["account_group", "market_group"]  # re-exported: the group names' old home


def book_key(symbol: str) -> str:
    return f"clearway:book:{symbol}"


@lru_cache(maxsize=2)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def depth_snapshot(engine: MatchingEngine, symbol: str, tick: int, lot: int) -> dict[str, Any]:
    depth = engine.depth(DEPTH_LEVELS)
    return {
        "market": symbol,
        "seq": engine.last_seq,
        "event_seq": engine.event_seq,
        "bids": [[price * tick, quantity * lot] for price, quantity in depth.bids],
        "asks": [[price * tick, quantity * lot] for price, quantity in depth.asks],
    }


def read_depth(symbol: str) -> dict[str, Any] | None:
    raw = _redis(settings.REDIS_URL).get(book_key(symbol))
    return None if raw is None else json.loads(raw)


# (order id, account id, client order id, status, reason, filled, remaining) after a batch
OrderState = tuple[int, int, str, str, str, int, int]


@dataclass
class Batch:
    """What one committed batch (or several merged) has to tell the world.

    ``parts`` holds each batch's trades and final order states, in commit order; accounts'
    own events are built from them only for the accounts that get published to.
    ``prev_event_seq`` is the engine position the batch starts from (its ``depth`` holds the
    one it ends at). ``balances`` are the traders' balances the batch's ledger posting left,
    set when it commits (``take_balances``).
    """

    symbol: str
    depth: dict[str, Any]
    market_events: list[MarketEvent] = field(default_factory=list)
    parts: list[tuple[list[NewTrade], list[OrderState]]] = field(default_factory=list)
    prev_event_seq: int = 0
    balances: dict[tuple[int, int], BalanceChange] = field(default_factory=dict)

    def merge(self, later: Batch) -> None:
        """Append a later batch of the same market (order kept per group)."""
        self.depth = later.depth
        self.market_events.extend(later.market_events)
        self.parts.extend(later.parts)
        self.balances.update(later.balances)  # later versions of the same balances

    def take_balances(self, changes: list[BalanceChange]) -> None:
        for change in changes:
            self.balances[(change.account_id, change.asset_id)] = change

    def market_message(self) -> GroupMessage:
        return market_events(self.prev_event_seq, self.depth["event_seq"], self.market_events)

    def accounts(self) -> set[int]:
        """Accounts with events of their own in this batch."""
        accounts = {account for account, _ in self.balances}
        for trades, orders in self.parts:
            for t in trades:
                accounts.add(t.maker_account_id)
                accounts.add(t.taker_account_id)
            accounts.update(state[1] for state in orders)
        return accounts

    def user_events(self, wanted: set[int] | None = None) -> dict[int, list[UserEvent]]:
        """Per account (all, or those ``wanted``): its fills, then its orders' new states,
        then its balances."""
        symbol = self.symbol
        events: dict[int, list[UserEvent]] = {}
        for trades, orders in self.parts:
            for t in trades:
                maker, taker = t.maker_account_id, t.taker_account_id
                if wanted is not None and maker not in wanted and taker not in wanted:
                    continue
                public = {
                    "type": "fill",
                    "market": symbol,
                    "event_seq": t.event_seq,
                    "seq": t.sequence,
                    "trade_id": t.trade_id,
                    "price": t.price,
                    "quantity": t.quantity,
                    "taker_side": t.taker_side,
                }
                maker_side = "sell" if t.taker_side == "buy" else "buy"
                for account, order_id, side, liquidity, fee in (
                    (maker, t.maker_order_id, maker_side, "maker", t.maker_fee),
                    (taker, t.taker_order_id, t.taker_side, "taker", t.taker_fee),
                ):
                    if wanted is None or account in wanted:
                        events.setdefault(account, []).append(
                            {
                                **public,
                                "order_id": order_id,
                                "side": side,
                                "liquidity": liquidity,
                                "fee": fee,
                            }
                        )
            for (order_id, account, client_order_id, status, reason, filled, remaining, price,
                 quantity) in orders:  # fmt: skip
                if wanted is None or account in wanted:
                    events.setdefault(account, []).append(
                        {
                            "type": "order",
                            "market": symbol,
                            "order_id": order_id,
                            "client_order_id": client_order_id,
                            "status": status,
                            "reason": reason,
                            "filled_quantity": filled,
                            "remaining_quantity": remaining,
                            # An amend can change both: the frame shows the order as it now is.
                            "price": price,
                            "quantity": quantity,
                        }
                    )
        for (account, _), change in sorted(self.balances.items()):
            if wanted is None or account in wanted:
                events.setdefault(account, []).append(change.event())
        return events


def _messages(batches: list[Batch], live: set[str] | None = None) -> list[tuple[str, GroupMessage]]:
    """(group, message) pairs: each market's batch, then each account's events (only for
    groups in ``live``, when given)."""
    messages: list[tuple[str, GroupMessage]] = [
        (market_group(b.symbol), b.market_message())
        for b in batches
        if live is None or market_group(b.symbol) in live
    ]
    wanted = None
    if live is not None:
        wanted = {a for b in batches for a in b.accounts() if account_group(a) in live}
    by_account: dict[int, list[UserEvent]] = {}
    for b in batches:
        for account_id, events in b.user_events(wanted).items():
            by_account.setdefault(account_id, []).extend(events)
    messages += [
        (account_group(account_id), user_events(events))
        for account_id, events in by_account.items()
    ]
    return messages


async def _send_all(layer: Any, messages: list[tuple[str, GroupMessage]]) -> None:
    # Concurrent (each group_send is a couple of Redis round trips and a batch touches one group
    # per account), but bounded: the layer's connection pool refuses more than 100 at once.
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(group: str, message: GroupMessage) -> None:
        async with gate:
            await layer.group_send(group, message)

    results = await asyncio.gather(
        *(send(group, message) for group, message in messages), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]


def publish_now(batch: Batch) -> None:
    """Publish one committed batch now, from this thread, with the settings of the moment,
    through the process's one publishing loop (``exchange.realtime.bus``)."""
    try:
        _redis(settings.REDIS_URL).set(book_key(batch.symbol), json.dumps(batch.depth))
        for group, message in _messages([batch]):
            bus.group_send(group, dict(message))
    except Exception:
        metrics.MESSAGES_LOST.labels("market", "failed").inc()
        log.exception("publishing the batch for %s failed; clients will resync", batch.symbol)


class BackgroundPublisher:
    """Publishes committed batches from a thread of its own, in commit order (see the module
    docstring). ``submit`` never blocks; past ``max_pending`` queued batches the oldest are
    dropped (Redis is down or far behind: clients resync from the snapshot anyway)."""

    def __init__(self, *, max_pending: int = 10_000) -> None:
        self.max_pending = max_pending
        self._pending: deque[Batch] = deque()
        self._lock = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        with self._lock:
            if len(self._pending) >= self.max_pending:
                dropped = self._pending.popleft()
                metrics.MESSAGES_LOST.labels("market", "dropped").inc()
                log.warning(
                    "publisher is %d batches behind; dropped the oldest (%s after event %d):"
                    " its market's sockets resync",
                    len(self._pending) + 1,
                    dropped.symbol,
                    dropped.prev_event_seq,
                )
            self._pending.append(batch)
            self._lock.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is published; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------------- the thread
    def _take(self) -> list[Batch] | None:
        with self._lock:
            self._busy = False
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._pending or self._stopping)
            if not self._pending:
                return None
            merged: dict[str, Batch] = {}
            while self._pending:
                batch = self._pending.popleft()
                if batch.symbol in merged:
                    merged[batch.symbol].merge(batch)
                else:
                    merged[batch.symbol] = batch
            self._busy = True
            return list(merged.values())

    def _run(self) -> None:
        # The loop persists, and with it the Redis connections.
        loop = asyncio.new_event_loop()
        layer = get_channel_layer()
        store = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            while (batches := self._take()) is not None:
                try:
                    live = loop.run_until_complete(
                        _store_depth_and_find_live(store, layer, batches)
                    )
                    # Events only for groups someone listens to: a socket that joins later
                    # reads state this batch is already part of.
                    messages = _messages(batches, live)
                    loop.run_until_complete(_send_all(layer, messages))
                except Exception:
                    metrics.MESSAGES_LOST.labels("market", "failed").inc(len(batches))
                    symbols = ", ".join(b.symbol for b in batches)
                    log.exception("publishing batches for %s failed; clients will resync", symbols)
        finally:
            loop.run_until_complete(store.aclose())
            loop.close()


async def _store_depth_and_find_live(
    store: redis.asyncio.Redis, layer: Any, batches: list[Batch]
) -> set[str] | None:
    """Store the depth snapshots, then say which of the batches' groups have members (None:
    the layer cannot tell, send to all). Most accounts a batch touches have no socket open,
    and a group_send to an empty group still costs two Redis round trips."""
    async with store.pipeline(transaction=False) as pipe:
        for b in batches:
            pipe.set(book_key(b.symbol), json.dumps(b.depth))
        await pipe.execute()
    if not isinstance(layer, RedisChannelLayer):
        return None
    groups = [market_group(b.symbol) for b in batches]
    groups += sorted({account_group(a) for b in batches for a in b.accounts()})
    by_shard: dict[int, list[str]] = {}
    for group in dict.fromkeys(groups):
        by_shard.setdefault(layer.consistent_hash(group), []).append(group)
    live: set[str] = set()
    for index, names in by_shard.items():
        async with layer.connection(index).pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(layer._group_key(name))
            counts = await pipe.execute()
        live.update(name for name, count in zip(names, counts, strict=True) if count)
    return live
