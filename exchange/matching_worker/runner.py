"""The worker loop: market ownership, wake-ups, micro-batches, timers and recovery.

A step reads up to ``batch_size`` commands after the engine's last applied sequence (one query
that joins each place command to its order), applies them to the engine, and commits their
effects in one transaction of a constant number of statements, whatever the batch size:

1. one statement per market: the cursor's compare-and-set (the fence: a worker that lost the
   market changes nothing), an ``UPDATE ... FROM unnest(...)`` of every order the batch touched
   and an ``INSERT ... SELECT FROM unnest(...)`` of its trades; a round's markets go together,
   in one pipeline;
2. one ``post_entries`` call for all their ledger entries (holds consumed, fees, releases): two
   statements, the balance rows locked last.

Resting orders are kept in memory next to the engine, loaded with it from the database, so a
step never reads the orders its fills touch. After any failure both are dropped and reloaded
from the database before the next step: the database is the truth, memory is a cache of it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from exchange import pgbulk
from exchange.accounts.models import SYSTEM_FEES
from exchange.accounts.services import system_account
from exchange.ledger.services import BalanceChange, NewEntry, post_entries
from exchange.markets.models import Market
from exchange.matching import MatchingEngine
from exchange.matching_worker import metrics
from exchange.matching_worker.book_state import CommandRow, OrderRow, engine_command, load_book
from exchange.matching_worker.effects import RESTING_STATUSES, BatchEffects
from exchange.matching_worker.levels import BookLevels
from exchange.matching_worker.publish import Batch, depth_snapshot, publish_now
from exchange.matching_worker.replace import apply_replace
from exchange.pgbulk import ints, texts
from exchange.trading.models import (
    MarketCursor,
    MarketSequence,
    Order,
    OrderCommand,
    Trade,
)
from exchange.trading.services import NOTIFY_CHANNEL, deadman_fire_due, next_sequence

log = logging.getLogger(__name__)
# One DEBUG line per committed batch ("batch <market> <first seq> <last seq> <fills> <unix
# time>"), for bench/matching_worker.py; `python -m workers.matching --log-batches` turns it on.
batch_log = logging.getLogger("exchange.matching_worker.batches")

# Advisory lock namespace ("CW"): (namespace, market id) names one market's ownership.
LOCK_NAMESPACE = 0x4357

_COMMAND = OrderCommand._meta.db_table
_ORDER = Order._meta.db_table
_CURSOR = MarketCursor._meta.db_table
_SEQUENCE = MarketSequence._meta.db_table
_TRADE = Trade._meta.db_table
_PLACE = OrderCommand.Kind.PLACE.value
_REPLACE = OrderCommand.Kind.REPLACE.value
_MATCHED = Trade.SettlementStatus.MATCHED.value

# The newest sequence rides along (for the lag gauge) rather than costing a query of its own.
# Arrays go in as text literals (``pgbulk.ints`` / ``pgbulk.texts``).
_READ_COMMANDS = f"""
    SELECT (SELECT last_sequence FROM {_SEQUENCE} WHERE market_id = %(market)s),
           {CommandRow.COLUMNS}, {OrderRow.COLUMNS}
    FROM {_COMMAND} c
    LEFT JOIN {_ORDER} o ON c.kind = '{_PLACE}' AND o.id = c.order_id
    WHERE c.market_id = %(market)s AND c.sequence > %(after)s AND c.sequence <= %(last)s
    ORDER BY c.sequence
"""

# One statement, one round trip: the cursor's compare-and-set, and (joined to its result, so
# only when it succeeded) the orders' new states and the trades.
_WRITE_BATCH = f"""
    WITH advanced AS (
        UPDATE {_CURSOR} SET applied_sequence = %s, event_sequence = %s, updated_at = now()
        WHERE market_id = %s AND applied_sequence = %s AND event_sequence = %s
        RETURNING market_id
    ), orders AS (
        UPDATE {_ORDER} AS o
        SET status = u.status, reason = u.reason, filled_quantity = u.filled_quantity,
            remaining_quantity = u.remaining_quantity, hold_remaining = u.hold_remaining,
            price = u.price, quantity = u.quantity, sequence = u.sequence,
            hold_amount = o.hold_amount + u.hold_added, updated_at = now()
        FROM advanced,
             unnest(%s::bigint[], %s::text[], %s::text[], %s::numeric[], %s::numeric[],
                    %s::numeric[], %s::numeric[], %s::numeric[], %s::bigint[], %s::numeric[])
               AS u(id, status, reason, filled_quantity, remaining_quantity, hold_remaining,
                    price, quantity, sequence, hold_added)
        WHERE o.id = u.id
    ), trades AS (
        INSERT INTO {_TRADE} (trade_id, market_id, sequence, maker_order_id, taker_order_id,
                              maker_account_id, taker_account_id, taker_side, price, quantity,
                              notional, maker_fee, taker_fee, settlement_status, created_at)
        SELECT t.trade_id, advanced.market_id, t.sequence, t.maker_order_id, t.taker_order_id,
               t.maker_account_id, t.taker_account_id, t.taker_side, t.price, t.quantity,
               t.notional, t.maker_fee, t.taker_fee, %s,
               timestamptz 'epoch' + t.created_us * interval '1 microsecond'
        FROM advanced,
             unnest(%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                    %s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::numeric[],
                    %s::numeric[], %s::numeric[], %s::bigint[])
               AS t(trade_id, sequence, maker_order_id, taker_order_id, maker_account_id,
                    taker_account_id, taker_side, price, quantity, notional, maker_fee,
                    taker_fee, created_us)
    )
    SELECT count(*) FROM advanced
"""


class FenceLost(RuntimeError):
    """Another worker advanced the market's cursor: this one must stop applying it."""

    def __init__(self, message: str, job: CommitJob | None = None) -> None:
        super().__init__(message)
        self.job = job


class RolledBack(RuntimeError):
    """This market's batch shared a transaction with another market's that failed."""


@dataclass(slots=True)
class CommitJob:
    """Everything one batch writes, built on the matching thread, run in one transaction."""

    runner: MarketRunner
    epoch: int
    symbol: str
    market_id: int
    cursor: list[int]  # new applied / event sequence, then the expected old ones
    orders: list[str]  # column arrays of the touched orders (text literals)
    trades: list[str]  # column arrays of the new trades (text literals)
    fills: int
    entries: list[NewEntry]
    batch: Batch
    first: int
    last: int
    accepted_us: list[int]
    read_at: float = 0.0  # unix times: the batch read, and its transaction began
    began_at: float = 0.0


@dataclass
class MarketRunner:
    """One owned market: its engine, its resting orders and the batch loop.

    ``engine`` is None after a failure: the next step reloads it from the database first.
    With a ``committer``, a batch's transaction runs on the committer's thread while this one
    matches the next batch; a commit failure comes back through ``commit_error`` and resets
    the runner like any other failure. ``epoch`` counts resets: a job of an older epoch is
    skipped, never committed.
    """

    market: Market
    engine: MatchingEngine | None
    fees_account_id: int
    batch_size: int
    resting: dict[int, OrderRow] = field(default_factory=dict)
    levels: BookLevels | None = None  # the market stream's book (checksums), with the engine
    publish: Callable[[Batch], None] | None = None
    committer: Committer | None = None
    epoch: int = 0
    commit_error: tuple[int, BaseException] | None = None
    backlog: int = 0  # commands left in the log after the last batch read
    failures: int = 0
    retry_at: float = 0.0

    @classmethod
    def start(
        cls,
        market: Market,
        batch_size: int,
        publish: Callable[[Batch], None] | None = None,
        committer: Committer | None = None,
    ) -> MarketRunner:
        fees = system_account(SYSTEM_FEES)
        runner = cls(market, None, fees.pk, batch_size, publish=publish, committer=committer)
        runner.rebuild()
        return runner

    def rebuild(self) -> None:
        metrics.REBUILDS.labels(self.market.symbol).inc()
        self.reset()
        if self.committer is not None:
            self.committer.drain(self)  # nothing of this market in flight while it loads
        market = Market.objects.select_related("base", "quote").get(pk=self.market.pk)
        self.engine, self.resting = load_book(market)
        self.levels = BookLevels(self.engine, market.tick_size, market.lot_size)
        self.market = market

    def reset(self) -> None:
        """Forget memory (engine, resting orders, batches not yet committed)."""
        self.engine, self.resting, self.levels = None, {}, None
        self.epoch += 1

    def step(self, collect: Callable[[CommitJob], None] | None = None) -> int:
        """Apply one micro-batch and commit it, or hand it to ``collect`` (for the committer,
        with the other markets' batches of this round); returns how many commands it
        applied."""
        try:
            committer = self.committer
            if committer is not None:
                if self.backlog >= self.batch_size:
                    # Full batches are waiting: match the next while the last one commits.
                    committer.wait_for_slot()
                else:
                    # Otherwise read once this market's last batch has committed: what arrives
                    # meanwhile joins the next batch (group commit) instead of queueing behind
                    # it. Other markets' batches keep committing meanwhile.
                    committer.drain(self)
            self._raise_commit_error()
            if self.engine is None:
                self.rebuild()
            engine = self.engine
            assert engine is not None
            applied_before, events_before = engine.last_seq, engine.event_seq
            read_at = time.time()
            commands, placed, newest = self._read(applied_before)
            self.backlog = newest - applied_before - len(commands)
            if not commands:
                metrics.LAG.labels(self.market.symbol).set(max(newest - applied_before, 0))
                return 0
            # Sequences commit in order (the counter row stays locked until its transaction
            # commits), so the log has no holes; a hole would mean a bug, never "wait and see".
            if commands[-1].sequence != applied_before + len(commands):
                raise RuntimeError(
                    f"{self.market.symbol}: command log has a gap after {applied_before}"
                )
            effects = self._apply(commands, placed)
            job = self._prepare(commands, placed, effects, applied_before, events_before)
            job.read_at = read_at
            if collect is None:
                commit(job)
            else:
                collect(job)
        except BaseException:
            # Memory may hold half a batch: reload engine and orders from the database.
            self.reset()
            raise
        metrics.LAG.labels(self.market.symbol).set(max(newest - job.cursor[0], 0))
        return len(commands)

    def _raise_commit_error(self) -> None:
        error, self.commit_error = self.commit_error, None
        if error is not None and error[0] == self.epoch:
            raise error[1]

    def _read(self, after: int) -> tuple[list[CommandRow], dict[int, OrderRow], int]:
        commands, placed = [], {}
        newest = after
        with pgbulk.cursor() as cursor:
            cursor.execute(
                # Sequences are gapless: a range bounds the batch whatever plan the table's
                # statistics (fresh after a bulk load) lead to.
                _READ_COMMANDS,
                {"market": self.market.pk, "after": after, "last": after + self.batch_size},
            )
            order_at = 1 + CommandRow.WIDTH
            for row in cursor:
                newest = row[0] or 0
                command = CommandRow(*row[1:order_at])
                if command.kind == _PLACE:
                    if row[order_at] is None:  # the database does not check the log's references
                        raise RuntimeError(
                            f"{self.market.symbol}: place command {command.sequence} names"
                            f" order {command.order_id}, which does not exist"
                        )
                    placed[command.order_id] = OrderRow(*row[order_at:])
                commands.append(command)
        return commands, placed, newest

    def _apply(self, commands: list[CommandRow], placed: dict[int, OrderRow]) -> BatchEffects:
        engine, market = self.engine, self.market
        assert engine is not None
        # The batch's new orders join the resting ones for the batch (copying the book's orders
        # into a new dict cost more than the matching); _prepare takes out those that did not
        # come to rest.
        self.resting.update(placed)
        assert self.levels is not None
        effects = BatchEffects(market, self.fees_account_id, self.resting, self.levels)
        submit, apply = engine.submit, effects.apply
        for command in commands:
            kind = command.kind
            if kind == _REPLACE:
                apply_replace(effects, command, submit(engine_command(command, None, market)))
                continue
            order = placed.get(command.order_id) if kind == _PLACE else None
            apply(submit(engine_command(command, order, market)), command.accepted_us)
        return effects

    def _prepare(
        self,
        commands: list[CommandRow],
        placed: dict[int, OrderRow],
        effects: BatchEffects,
        applied_before: int,
        events_before: int,
    ) -> CommitJob:
        """The batch's writes as column arrays (values of now: the next batch may change the
        same orders in memory before this one commits)."""
        engine, market = self.engine, self.market
        assert engine is not None
        changed = effects.finish()
        symbol = market.symbol
        trades = effects.trades
        job = CommitJob(
            runner=self,
            epoch=self.epoch,
            symbol=symbol,
            market_id=market.pk,
            cursor=[engine.last_seq, engine.event_seq, market.pk, applied_before, events_before],
            orders=[
                ints([o.pk for o in changed]),
                texts([o.status for o in changed]),
                texts([o.reason for o in changed]),
                ints([o.filled_quantity for o in changed]),
                ints([o.remaining_quantity for o in changed]),
                ints([o.hold_remaining for o in changed]),
                # Amends change these (values unchanged otherwise: the update stays HOT).
                ints([o.price for o in changed]),
                ints([o.quantity for o in changed]),
                ints([o.sequence for o in changed]),
                ints([o.hold_added for o in changed]),
            ],
            trades=[
                texts([t.trade_id for t in trades]),
                ints([t.sequence for t in trades]),
                ints([t.maker_order_id for t in trades]),
                ints([t.taker_order_id for t in trades]),
                ints([t.maker_account_id for t in trades]),
                ints([t.taker_account_id for t in trades]),
                texts([t.taker_side for t in trades]),
                ints([t.price for t in trades]),
                ints([t.quantity for t in trades]),
                ints([t.notional for t in trades]),
                ints([t.maker_fee for t in trades]),
                ints([t.taker_fee for t in trades]),
                ints([t.created_us for t in trades]),
            ],
            fills=len(trades),
            entries=effects.entries,
            batch=Batch(
                symbol,
                depth_snapshot(engine, symbol, market.tick_size, market.lot_size),
                effects.market_events,
                [
                    (
                        trades,
                        [
                            (
                                o.pk,
                                o.account_id,
                                o.client_order_id,
                                o.status,
                                o.reason,
                                o.filled_quantity,
                                o.remaining_quantity,
                                o.price,
                                o.quantity,
                            )
                            for o in changed
                        ],
                    )
                ],
                prev_event_seq=events_before,
            ),
            first=commands[0].sequence,
            last=commands[-1].sequence,
            accepted_us=[c.accepted_us for c in commands],
        )
        for order in changed:
            order.hold_added = 0  # written by this job
        resting = self.resting
        # Changed orders that are done, and placed ones that did not come to rest (even if no
        # event touched them), leave the resting dict.
        for order in (*changed, *placed.values()):
            if order.status not in RESTING_STATUSES:
                resting.pop(order.pk, None)
        if len(resting) != len(engine.book.orders):
            raise RuntimeError(f"{symbol}: resting orders out of step with the book")
        return job

    def due_expiry(self, now_ms: int) -> bool:
        engine = self.engine
        if engine is None:
            return False
        # The expiry heap's head is the earliest deadline (possibly of an order gone since):
        # the common case, nothing due, costs one comparison.
        expiries = engine.book.expiries
        if not expiries or expiries[0][0] > now_ms:
            return False
        return any(
            order.expires_at is not None and order.expires_at <= now_ms
            for order in engine.book.orders.values()
        )


def commit(job: CommitJob) -> None:
    """Run one batch's transaction; then (on commit) publish it, log it, count it."""
    commit_group([job])


def commit_group(jobs: list[CommitJob]) -> None:
    """Commit batches of several markets in one transaction (one round of statements and one
    commit for all of them); then, on commit, publish, log and count each.

    All or nothing: if one market's fence fails, no market's batch is committed.
    """
    began_at = time.time()
    for job in jobs:
        job.began_at = began_at
    with transaction.atomic():
        with pgbulk.cursor() as cursor:
            # Not waiting for the WAL flush is safe here, and halves the commit's latency: the
            # batch is a pure function of the command log, which the API committed durably. A
            # database crash can lose only the newest batches, cursor included (WAL order), and
            # the worker then applies the same commands again to the same results (same trade
            # ids, same event sequences). Anything that reads the batch and commits durably
            # (settlement, withdrawals) flushes the WAL up to it first.
            # One round trip for all of it (pipeline mode): nothing here waits on a result.
            conn = cursor.connection
            fences = []
            with conn.pipeline():
                cursor.execute("SET LOCAL synchronous_commit TO off")
                for job in jobs:
                    fence = psycopg.Cursor(conn)  # a result each; server-side binding
                    fence.execute(_WRITE_BATCH, [*job.cursor, *job.orders, _MATCHED, *job.trades])
                    fences.append(fence)
            for job, fence in zip(jobs, fences, strict=True):
                with fence:
                    advanced = fence.fetchone()[0]
                if advanced != 1:
                    raise FenceLost(
                        f"{job.symbol}: the cursor moved; another worker owns the market", job
                    )
        post_entries(
            [entry for job in jobs for entry in job.entries],
            savepoint=False,
            balances_to=lambda changes: _hand_balances(jobs, changes),
        )
        # Registered after post_entries' own on_commit: each batch has its balances when sent.
        for job in jobs:
            publish, batch = job.runner.publish or publish_now, job.batch
            transaction.on_commit(lambda publish=publish, batch=batch: publish(batch))
    committed_us = time.time_ns() // 1000
    for job in jobs:
        _committed(job, committed_us)


def _hand_balances(jobs: list[CommitJob], changes: list[BalanceChange]) -> None:
    """Give each market's batch the balances its accounts ended with, to send with its fills
    and orders, in order (one account trading in two markets of the round gets them twice;
    the version makes the second a no-op for the socket)."""
    if len(jobs) == 1:
        jobs[0].batch.take_balances(changes)
        return
    for job in jobs:
        accounts = job.batch.accounts()
        job.batch.take_balances([c for c in changes if c.account_id in accounts])


def _committed(job: CommitJob, committed_us: int) -> None:
    symbol, fills = job.symbol, job.fills
    if batch_log.isEnabledFor(logging.DEBUG):
        batch_log.debug(
            "batch %s %d %d %d %.6f read %.6f began %.6f",
            symbol,
            job.first,
            job.last,
            fills,
            committed_us / 1e6,
            job.read_at,
            job.began_at,
        )
    count = job.last - job.first + 1
    metrics.COMMANDS_APPLIED.labels(symbol).inc(count)
    metrics.FILLS.labels(symbol).inc(fills)
    metrics.BATCH_SIZE.labels(symbol).observe(count)
    observe = metrics.APPLY_LATENCY.labels(symbol).observe
    for accepted_us in job.accepted_us:
        observe(max(committed_us - accepted_us, 0) / 1e6)


class Committer:
    """Runs batches' transactions on a thread of its own, in submission order, so the database
    writes while the matching thread matches the next batches.

    Whatever is queued when a transaction starts goes into it together (group commit: with
    several markets, one round of statements and one commit for all their batches). At most
    ``depth`` jobs wait behind the running group: memory stays at most a few batches ahead of
    the database. Jobs that a reset of their runner made stale are skipped.
    """

    def __init__(self, depth: int = 4) -> None:
        self.depth = depth
        self._jobs: deque[CommitJob] = deque()
        self._cond = threading.Condition()
        self._running: list[CommitJob] = []
        self._stopping = False
        self._reconnect = False
        self._thread = threading.Thread(target=self._run, name="committer", daemon=True)
        self._thread.start()

    def wait_for_slot(self) -> None:
        """Wait until a submitted job would not have to queue behind a full queue."""
        self._wait(lambda: len(self._jobs) < self.depth)

    def submit(self, jobs: list[CommitJob]) -> None:
        """Queue batches to be committed together (unless a transaction is already running,
        they go into the same one)."""
        with self._cond:
            self._wait(lambda: len(self._jobs) < self.depth)
            self._jobs.extend(jobs)
            self._cond.notify_all()

    def drain(self, runner: MarketRunner | None = None) -> None:
        """Wait until every job submitted (for ``runner``, or at all) is committed, failed or
        skipped."""

        def done() -> bool:
            if runner is None:
                return not self._jobs and not self._running
            return not any(job.runner is runner for job in (*self._running, *self._jobs))

        self._wait(done)

    def reconnect(self) -> None:
        """The database went away: open a new connection before the next job."""
        self._reconnect = True

    def close(self) -> None:
        self.drain()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _wait(self, predicate: Callable[[], bool]) -> None:
        with self._cond:
            self._cond.wait_for(lambda: predicate() or not self._thread.is_alive())
            if not predicate():
                raise RuntimeError("the committer thread is gone")

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._running = []
                    self._cond.notify_all()
                    self._cond.wait_for(lambda: self._jobs or self._stopping)
                    if not self._jobs:
                        return
                    # A reset runner's batches are matched again after a reload: skip them.
                    group = [job for job in self._jobs if job.epoch == job.runner.epoch]
                    self._jobs.clear()
                    self._running = group
                    self._cond.notify_all()
                if not group:
                    continue
                if self._reconnect:
                    self._reconnect = False
                    _close_django_connection()
                try:
                    commit_group(group)
                except BaseException as error:
                    _report(group, error)
                    if not _usable():
                        _close_django_connection()
        finally:
            with self._cond:
                self._running = []
                self._cond.notify_all()
            _close_django_connection()


def _report(group: list[CommitJob], error: BaseException) -> None:
    """Hand a failed group's error to each of its runners (each resets and reloads)."""
    fenced = error.job if isinstance(error, FenceLost) else None
    for job in group:
        if job.runner.commit_error is not None:
            continue
        if fenced is None or job.runner is fenced.runner:
            mine = error
        else:
            mine = RolledBack(f"{job.symbol}: rolled back with {fenced.symbol}'s batch")
        job.runner.commit_error = (job.epoch, mine)


class Worker:
    """Owns markets through PostgreSQL advisory locks held on a dedicated connection.

    A second worker for the same market retries the lock every ``claim_seconds`` and takes
    over when the owner's connection ends (the process died), rebuilding the book from the
    database. The cursor's compare-and-set keeps even a split brain from applying a command
    twice.

    ``publish`` receives each committed batch (on commit, in order); by default it is
    published right away on the committing thread (``publish_now``); the worker process
    passes a ``BackgroundPublisher``'s ``submit``. ``pipeline`` commits on a ``Committer``
    thread, overlapping a batch's writes with the matching of the next;
    ``run_once`` still returns 0 only once everything it applied is committed.
    """

    def __init__(
        self,
        symbols: list[str] | None = None,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        timer_seconds: float = 1.0,
        claim_seconds: float = 0.5,
        publish: Callable[[Batch], None] | None = None,
        pipeline: bool = False,
    ) -> None:
        self.symbols = symbols
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.timer_seconds = timer_seconds
        self.claim_seconds = claim_seconds
        self.publish = publish
        self.committer = Committer() if pipeline else None
        self.runners: dict[int, MarketRunner] = {}
        self.listener: psycopg.Connection | None = None
        self._next_timer = 0.0
        self._next_claim = 0.0

    def _markets(self) -> list[Market]:
        markets = Market.objects.order_by("pk")
        if self.symbols:
            markets = markets.filter(symbol__in=self.symbols)
        return list(markets)

    def _connect(self) -> psycopg.Connection:
        db = settings.DATABASES["default"]
        conn = psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"] or None,
            autocommit=True,
            connect_timeout=5,
            # Names the owner in pg_locks / pg_stat_activity (operators, the takeover bench).
            application_name=f"clearway-matching-{os.getpid()}",
        )
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return conn

    def _claim(self) -> None:
        """Take every wanted market whose lock is free; at most every ``claim_seconds``."""
        now = time.monotonic()
        if now < self._next_claim:
            return
        self._next_claim = now + self.claim_seconds
        listener = self.listener
        assert listener is not None
        wanted = [m for m in self._markets() if m.pk not in self.runners]
        if not wanted:
            listener.execute("SELECT 1")  # the locks live on this connection: is it alive?
            return
        for market in wanted:
            got = listener.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, market.pk)
            ).fetchone()
            if not (got and got[0]):
                continue
            try:
                runner = MarketRunner.start(market, self.batch_size, self.publish, self.committer)
            except BaseException:
                self._unlock(market.pk)
                raise
            self.runners[market.pk] = runner
            metrics.OWNED.labels(market.symbol).set(1)
            log.info("owning %s from sequence %s", market.symbol, runner.engine.last_seq)

    def _unlock(self, market_id: int) -> None:
        if self.listener is not None:
            self.listener.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, market_id))

    def _release_all(self) -> None:
        for runner in self.runners.values():
            runner.reset()  # batches still queued for the committer are skipped
            metrics.OWNED.labels(runner.market.symbol).set(0)
        self.runners.clear()
        if self.listener is not None:
            try:
                self.listener.close()  # ends the session: its advisory locks go with it
            finally:
                self.listener = None

    def _timers(self) -> None:
        """Expiry and dead-man deadlines become sequenced commands, like any other change."""
        if time.monotonic() < self._next_timer:
            return
        self._next_timer = time.monotonic() + self.timer_seconds
        deadman_fire_due()
        now = timezone.now()
        now_ms = int(now.timestamp() * 1000)
        for runner in self.runners.values():
            if runner.due_expiry(now_ms) and not _expire_pending(runner.market):
                with transaction.atomic():
                    sequence = next_sequence(runner.market)
                    OrderCommand.objects.create(
                        market=runner.market,
                        sequence=sequence,
                        kind=OrderCommand.Kind.EXPIRE,
                        accepted_at=now,
                    )

    def run_once(self) -> int:
        """Claim markets (when due), apply one batch per owned market, fire timers (when due).

        Returns how many commands were applied. A market whose step fails is retried after a
        growing pause while the others go on; losing the database connection is raised.
        """
        if self.listener is None:
            self.listener = self._connect()
        self._claim()
        applied = 0
        now = time.monotonic()
        jobs: list[CommitJob] = []
        collect = jobs.append if self.committer is not None else None
        for market_id, runner in list(self.runners.items()):
            if runner.retry_at > now:
                continue
            try:
                applied += runner.step(collect)
                runner.failures = 0
            except FenceLost:
                log.error("lost %s to another worker; giving it up", runner.market.symbol)
                del self.runners[market_id]
                metrics.OWNED.labels(runner.market.symbol).set(0)
                self._unlock(market_id)
            except Exception:
                if self.connections_lost():
                    raise
                runner.failures += 1
                pause = min(0.25 * 2**runner.failures, 10.0)
                runner.retry_at = time.monotonic() + pause
                log.exception(
                    "%s: step failed; reloading from the database and retrying in %.1fs",
                    runner.market.symbol,
                    pause,
                )
        if jobs:
            assert self.committer is not None
            self.committer.submit(jobs)  # this round's markets: one transaction
        self._timers()
        if applied == 0 and self.committer is not None:
            self.committer.drain()  # 0 means: all caught up, and committed
        return applied

    def wait(self) -> None:
        """Sleep until a NOTIFY says a command was sequenced, or the poll interval passes (it
        is never longer than the claim interval: a standby retries the locks on time)."""
        assert self.listener is not None
        timeout = min(self.poll_seconds, max(self._next_claim - time.monotonic(), 0.0))
        woken = False
        for _ in self.listener.notifies(timeout=timeout, stop_after=1):
            woken = True
        if woken:
            # Wake once for everything already queued, not once per notification.
            for _ in self.listener.notifies(timeout=0):
                pass

    def connections_lost(self) -> bool:
        """Whether the lock connection or Django's is unusable (the database went away)."""
        if self.listener is None:
            return True  # connecting it failed
        try:
            self.listener.execute("SELECT 1")
        except Exception:
            return True
        return not _usable()

    def close(self) -> None:
        """Commit what is in flight, give up every market and close the connections."""
        try:
            if self.committer is not None:
                self.committer.close()
        finally:
            self._release_all()
            _close_django_connection()

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        log.info("matching worker started (markets: %s)", ", ".join(self.symbols or ["all"]))
        failures = 0
        try:
            while not should_stop():
                try:
                    if self.run_once() == 0:
                        self.wait()
                    failures = 0
                except Exception as error:
                    failures += 1
                    pause = min(0.5 * 2 ** (failures - 1), 5.0)
                    if self.connections_lost():
                        # The database went away (restart, failover, network): our locks went
                        # with the lock connection. Drop everything, reconnect, rebuild.
                        log.warning(
                            "database connection lost (%s); reconnecting in %.1fs", error, pause
                        )
                        self._release_all()
                        _close_django_connection()
                        if self.committer is not None:
                            self.committer.reconnect()
                    else:
                        log.exception("matching loop failed; retrying in %.1fs", pause)
                    _sleep(pause, should_stop)
        finally:
            self.close()
            log.info("matching worker stopped")


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))


def _usable() -> bool:
    """Whether this thread's Django connection works (or is closed and will reconnect)."""
    try:
        return connection.connection is None or connection.is_usable()
    except Exception:
        return False


def _close_django_connection() -> None:
    try:
        connection.close()
    except Exception:
        log.debug("closing the broken database connection failed", exc_info=True)


def _expire_pending(market: Market) -> bool:
    cursor = (
        MarketCursor.objects.filter(market=market)
        .values_list("applied_sequence", flat=True)
        .first()
        or 0
    )
    return OrderCommand.objects.filter(
        market=market, kind=OrderCommand.Kind.EXPIRE, sequence__gt=cursor
    ).exists()
