"""Ledger writes: the only code that changes a Balance.

``post_entry`` posts one journal entry; ``post_entries`` posts many in one transaction with a
constant number of statements (the matching worker's micro-batches). Both share one code path:

1. validate in Python (known kind, non-zero integer lines, zero sum per asset);
2. one statement inserts the entries with ``ON CONFLICT (kind, reference) DO NOTHING`` and the
   lines of those it inserted: an entry that already exists is skipped (idempotency), after
   checking it was posted with the same lines;
3. one statement locks every touched balance once, ``ORDER BY account_id, asset_id ... FOR
   UPDATE``, and adds each its net change, unless the balance is guarded (never below zero) and
   the lowest point one of its buckets reaches along the entries, in order, is below zero. Every
   transaction locks in the same order, so concurrent postings wait for each other but never
   deadlock. Missing balance rows are created (``ON CONFLICT DO NOTHING``) and moved in a second
   pass;
4. if the guard held a balance back, the entries are replayed against the locked values to
   name the first one that overdraws (InsufficientFunds), and nothing is applied. The outcome is
   what posting the entries one by one would give, except that a refusal applies none of them.

5. after the transaction commits, each trader's balance as the posting left it goes to its
   websocket (/ws/v1/user) as a ``balance`` event (``transaction.on_commit``): every change of a
   trader's available or held amount, whoever posts it (deposits, orders, fills, fees,
   withdrawals, adjustments), is announced from here. Each move bumps the row's ``version``, so
   a consumer tells the newest of two announcements apart whatever order they arrive in.

The balances come last because their rows stay locked until the transaction ends: every other
writer of those accounts (order placement, the matching worker) waits meanwhile.

Arrays (``unnest``) rather than VALUES lists keep each statement's text constant and its
parameter count at a handful, whatever the batch size; they go in as text literals
(``exchange.pgbulk``).

Callers that post several entries in one outer transaction should pass them to one
``post_entries`` call: separate calls lock separately, and two such transactions touching the
same balances in different orders could deadlock.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection, transaction

from exchange import pgbulk
from exchange.accounts.models import SYSTEM_DEPOSITS, SYSTEM_FEES, SYSTEM_WITHDRAWALS, Account
from exchange.accounts.services import system_account
from exchange.ledger.errors import (
    InsufficientFunds,
    InvalidEntry,
    ReferenceConflict,
    UnbalancedEntry,
)
from exchange.ledger.models import Balance, Bucket, JournalEntry, JournalLine
from exchange.markets.models import Asset
from exchange.pgbulk import ints, texts
from exchange.realtime.messages import BalanceEvent, balance_event
from exchange.realtime.publishing import publish_user_events

# System accounts that, like traders, can never hold less than nothing. Only system:deposits
# goes negative (it is the other side of every deposit); the DB constraint exempts all system
# rows, so these are guarded here and by ledger_check.
NON_NEGATIVE_SYSTEM_ACCOUNTS = (SYSTEM_FEES, SYSTEM_WITHDRAWALS)
_GUARDED_SYSTEM = texts(NON_NEGATIVE_SYSTEM_ACCOUNTS)

MAX_REFERENCE_LENGTH = 128
_MAX_ABS_AMOUNT = 10**78 - 1  # NUMERIC(78, 0)

Key = tuple[int, int]  # (account_id, asset_id)

_KINDS = frozenset(JournalEntry.Kind.values)
_AVAILABLE = Bucket.AVAILABLE.value
_BUCKETS = frozenset(Bucket.values)


# Named tuples, not frozen dataclasses: the matching worker builds ~10 lines per command, and a
# frozen dataclass's __init__ sets each field through object.__setattr__.
class Line(NamedTuple):
    """One leg of an entry: a signed amount (base units) into an account's asset bucket."""

    account_id: int
    asset_id: int
    amount: int
    bucket: str = Bucket.AVAILABLE


class NewEntry(NamedTuple):
    kind: str
    reference: str
    lines: Sequence[Line]
    metadata: Mapping[str, Any] | None = None


class BalanceChange(NamedTuple):
    """A trader's balance as a committed posting left it (``version``: the row's count of
    moves, strictly increasing in commit order)."""

    account_id: int
    asset_id: int
    asset: str
    available: int
    held: int
    version: int

    def event(self) -> BalanceEvent:
        return balance_event(self.asset, self.available, self.held, self.version)


BalanceSink = Callable[[list[BalanceChange]], None]


def publish_balances(changes: list[BalanceChange]) -> None:
    """The default destination of balance changes: each account's websocket group."""
    by_account: dict[int, list] = {}
    for change in changes:
        by_account.setdefault(change.account_id, []).append(change.event())
    for account_id, events in by_account.items():
        publish_user_events("balance", account_id, events)


@dataclass(frozen=True, slots=True)
class PostedEntry:
    kind: str
    reference: str
    entry_id: int
    created: bool  # False: (kind, reference) was already posted; nothing was applied again


@transaction.atomic
def post_entry(
    *,
    kind: str,
    reference: str,
    lines: Sequence[Line],
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Post one entry; posting the same (kind, reference) again returns the existing entry.

    Raises InvalidEntry / UnbalancedEntry (bad lines), InsufficientFunds (a trader or fee bucket
    would go negative) or ReferenceConflict (same key, different lines). Nothing is applied then.
    """
    entry = NewEntry(kind=kind, reference=reference, lines=lines, metadata=metadata)
    [posted], created = _post([entry], publish_balances)
    if not posted.created:
        return JournalEntry.objects.get(pk=posted.entry_id)
    return created[0]


def post_entries(
    entries: Sequence[NewEntry], *, savepoint: bool = True, balances_to: BalanceSink | None = None
) -> list[PostedEntry]:
    """Post many entries in one transaction; one PostedEntry per input entry, in order.

    Entries whose (kind, reference) already exists (in the database or earlier in the batch)
    are skipped with ``created=False``. All-or-nothing: any error applies none of the entries.
    Inside a transaction, ``savepoint=False`` saves two round trips (the matching worker's
    batches) but an error then leaves the caller's transaction to be rolled back.
    ``balances_to`` receives the traders' balances the entries leave, on commit (callbacks run
    in the order registered: before any the caller registers after this call); by default they
    are published to the accounts' websockets (``publish_balances``).
    """
    with transaction.atomic(savepoint=savepoint):
        posted, _ = _post(entries, balances_to or publish_balances)
    return posted


def _post(
    entries: Sequence[NewEntry], balances_to: BalanceSink
) -> tuple[list[PostedEntry], list[JournalEntry]]:
    """post_entries, plus model instances of the created entries (built, not re-read)."""
    if not entries:
        return [], []
    for entry in entries:
        _validate(entry)

    first: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        key = (entry.kind, entry.reference)
        if key not in first:
            first[key] = index
        elif _signature(entries[first[key]]) != _signature(entry):
            raise _conflict(entry)
    unique = [entries[index] for index in first.values()]

    with pgbulk.cursor() as cursor:
        inserted = _insert_entries(cursor, unique)
        existing_keys = [key for key in first if key not in inserted]
        existing = _existing_entries(cursor, existing_keys) if existing_keys else {}
        for key in existing_keys:
            _, signature = existing.get(key, (None, None))
            if signature != _signature(entries[first[key]]):
                raise _conflict(entries[first[key]])
        new = [entry for entry in unique if (entry.kind, entry.reference) in inserted]
        if new:
            # Last: a balance row stays locked until the transaction ends, and every other
            # writer of that account waits meanwhile.
            changes = _move_balances(cursor, new)
            if changes:
                transaction.on_commit(lambda: balances_to(changes))

    ids = {key: row[0] for key, row in inserted.items()}
    ids.update({key: row[0] for key, row in existing.items()})
    results = []
    seen: set[tuple[str, str]] = set()
    for entry in entries:
        key = (entry.kind, entry.reference)
        created = key in inserted and key not in seen
        seen.add(key)
        results.append(PostedEntry(entry.kind, entry.reference, ids[key], created))
    instances = []
    for entry in new:
        entry_id, created_at = inserted[(entry.kind, entry.reference)]
        instance = JournalEntry(
            id=entry_id,
            kind=entry.kind,
            reference=entry.reference,
            metadata=dict(entry.metadata) if entry.metadata is not None else None,
            created_at=created_at,
        )
        instance._state.adding = False
        instance._state.db = connection.alias
        instances.append(instance)
    return results, instances


def credit_deposit(
    *,
    account: Account,
    asset: Asset,
    amount: int,
    reference: str,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Credit a confirmed deposit to a trader's available balance, funded by system:deposits."""
    _require_positive(amount)
    deposits = system_account(SYSTEM_DEPOSITS)
    return post_entry(
        kind=JournalEntry.Kind.DEPOSIT,
        reference=reference,
        lines=[Line(deposits.pk, asset.pk, -amount), Line(account.pk, asset.pk, amount)],
        metadata=metadata,
    )


def hold(
    *,
    account: Account,
    asset: Asset,
    amount: int,
    reference: str,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Move ``amount`` from available to held (an open order, a pending withdrawal)."""
    _require_positive(amount)
    return post_entry(
        kind=JournalEntry.Kind.HOLD,
        reference=reference,
        lines=[
            Line(account.pk, asset.pk, -amount, Bucket.AVAILABLE),
            Line(account.pk, asset.pk, amount, Bucket.HELD),
        ],
        metadata=metadata,
    )


def release(
    *,
    account: Account,
    asset: Asset,
    amount: int,
    reference: str,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Move ``amount`` from held back to available (a cancel, an expired or refused withdrawal)."""
    _require_positive(amount)
    return post_entry(
        kind=JournalEntry.Kind.RELEASE,
        reference=reference,
        lines=[
            Line(account.pk, asset.pk, -amount, Bucket.HELD),
            Line(account.pk, asset.pk, amount, Bucket.AVAILABLE),
        ],
        metadata=metadata,
    )


def pay_withdrawal(
    *,
    account: Account,
    asset: Asset,
    amount: int,
    reference: str,
    metadata: Mapping[str, Any] | None = None,
) -> JournalEntry:
    """Consume a held amount for a withdrawal paid on-chain, into system:withdrawals."""
    _require_positive(amount)
    withdrawals = system_account(SYSTEM_WITHDRAWALS)
    return post_entry(
        kind=JournalEntry.Kind.WITHDRAWAL,
        reference=reference,
        lines=[
            Line(account.pk, asset.pk, -amount, Bucket.HELD),
            Line(withdrawals.pk, asset.pk, amount, Bucket.AVAILABLE),
        ],
        metadata=metadata,
    )


# --- validation -------------------------------------------------------------------------------


def _require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidEntry("The amount must be a positive integer of base units.")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(entry: NewEntry) -> None:
    """Check one entry (kind, reference, lines that sum to zero per asset, metadata)."""
    where = {"kind": entry.kind, "reference": entry.reference}
    if entry.kind not in _KINDS:
        raise InvalidEntry(f"Unknown entry kind {entry.kind!r}.", extra=where)
    if not isinstance(entry.reference, str) or not 0 < len(entry.reference) <= MAX_REFERENCE_LENGTH:
        raise InvalidEntry(
            f"The reference must be 1 to {MAX_REFERENCE_LENGTH} characters.", extra=where
        )
    if not entry.lines:
        raise InvalidEntry("An entry needs lines.", extra=where)
    sums: dict[int, int] = {}
    for line in entry.lines:
        if not isinstance(line, Line):
            raise InvalidEntry("Lines must be ledger Line objects.", extra=where)
        if not (_is_int(line.account_id) and _is_int(line.asset_id) and _is_int(line.amount)):
            raise InvalidEntry("Line ids and amounts must be integers.", extra=where)
        if line.amount == 0 or abs(line.amount) > _MAX_ABS_AMOUNT:
            raise InvalidEntry("Line amounts must be non-zero and fit NUMERIC(78).", extra=where)
        if line.bucket not in _BUCKETS:
            raise InvalidEntry(f"Unknown bucket {line.bucket!r}.", extra=where)
        sums[line.asset_id] = sums.get(line.asset_id, 0) + line.amount
    unbalanced = {asset_id: total for asset_id, total in sums.items() if total}
    if unbalanced:
        raise UnbalancedEntry(
            "The lines of an entry must sum to zero for each asset.",
            extra={**where, "sums": {str(k): str(v) for k, v in unbalanced.items()}},
        )
    if entry.metadata is not None and not isinstance(entry.metadata, Mapping):
        raise InvalidEntry("Metadata must be a mapping.", extra=where)


def _signature(entry: NewEntry) -> Counter[tuple[int, int, str, int]]:
    """An entry's lines as a multiset, to compare two postings of one (kind, reference): only
    built when a reference repeats."""
    return Counter(
        (line.account_id, line.asset_id, str(line.bucket), line.amount) for line in entry.lines
    )


def _conflict(entry: NewEntry) -> ReferenceConflict:
    return ReferenceConflict(
        "This (kind, reference) was already posted with different lines.",
        extra={"kind": entry.kind, "reference": entry.reference},
    )


# --- SQL --------------------------------------------------------------------------------------


_ENTRY = JournalEntry._meta.db_table
_LINE = JournalLine._meta.db_table
_BALANCE = Balance._meta.db_table
_ACCOUNT = Account._meta.db_table
_ASSET = Asset._meta.db_table

# Entries, then the lines of those just inserted (joined back through their key: RETURNING
# cannot return an input's position). Line ids follow the input order.
_INSERT_ENTRIES = f"""
    WITH e AS (
        INSERT INTO {_ENTRY} (kind, reference, metadata, created_at)
        SELECT e.kind, e.reference, e.metadata::jsonb, now()
        FROM unnest(%(kinds)s::text[], %(references)s::text[], %(metadata)s::text[])
          AS e(kind, reference, metadata)
        ORDER BY e.kind, e.reference
        ON CONFLICT (kind, reference) DO NOTHING
        RETURNING id, kind, reference, created_at
    ), lines AS (
        INSERT INTO {_LINE} (entry_id, account_id, asset_id, bucket, amount)
        SELECT e.id, l.account_id, l.asset_id, l.bucket, l.amount
        FROM unnest(%(entry)s::int[], %(account)s::bigint[], %(asset)s::bigint[],
                    %(bucket)s::text[], %(amount)s::numeric[])
               WITH ORDINALITY AS l(entry, account_id, asset_id, bucket, amount, n)
        JOIN unnest(%(kinds)s::text[], %(references)s::text[])
               WITH ORDINALITY AS k(kind, reference, entry) ON k.entry = l.entry
        JOIN e ON e.kind = k.kind AND e.reference = k.reference
        ORDER BY l.n
    )
    SELECT id, kind, reference, created_at FROM e
"""

_EXISTING_LINES = f"""
    SELECT e.kind, e.reference, e.id, l.account_id, l.asset_id, l.bucket, l.amount
    FROM {_ENTRY} e
    JOIN unnest(%s::text[], %s::text[]) AS k(kind, reference)
      ON e.kind = k.kind AND e.reference = k.reference
    JOIN {_LINE} l ON l.entry_id = e.id
"""

# The subquery locks in sorted order (PostgreSQL locks rows as they leave the sort); the guard
# reads the row as locked, the newest committed version. "guarded": must never go negative.
# A balance held back by the guard is locked but not returned.
_MOVE_BALANCES = f"""
    UPDATE {_BALANCE} AS b
    SET available = b.available + m.available, held = b.held + m.held, updated_at = now(),
        version = b.version + 1
    FROM (
        SELECT b.id, m.available, m.held, m.low_available, m.low_held,
               (NOT b.is_system OR a.address = ANY(%s::text[])) AS guarded, s.symbol
        FROM {_BALANCE} b
        JOIN {_ACCOUNT} a ON a.id = b.account_id
        JOIN {_ASSET} s ON s.id = b.asset_id
        JOIN unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[],
                    %s::numeric[])
          AS m(account_id, asset_id, available, held, low_available, low_held)
          ON b.account_id = m.account_id AND b.asset_id = m.asset_id
        ORDER BY b.account_id, b.asset_id
        FOR UPDATE OF b
    ) AS m
    WHERE b.id = m.id
      AND (NOT m.guarded
           OR (coalesce(b.available + m.low_available >= 0, true)
               AND coalesce(b.held + m.low_held >= 0, true)))
    RETURNING b.account_id, b.asset_id, b.is_system, m.symbol, b.available, b.held, b.version
"""

_SELECT_BALANCES = f"""
    SELECT b.id, b.account_id, b.asset_id, b.available, b.held,
           (NOT b.is_system OR a.address = ANY(%s::text[])) AS guarded
    FROM {_BALANCE} b
    JOIN {_ACCOUNT} a ON a.id = b.account_id
    JOIN unnest(%s::bigint[], %s::bigint[]) AS k(account_id, asset_id)
      ON b.account_id = k.account_id AND b.asset_id = k.asset_id
    ORDER BY b.account_id, b.asset_id
    FOR UPDATE OF b
"""

_CREATE_BALANCES = f"""
    INSERT INTO {_BALANCE} (account_id, asset_id, available, held, is_system, updated_at)
    SELECT k.account_id, k.asset_id, 0, 0, a.kind = %s, now()
    FROM unnest(%s::bigint[], %s::bigint[]) AS k(account_id, asset_id)
    JOIN {_ACCOUNT} a ON a.id = k.account_id
    JOIN {_ASSET} s ON s.id = k.asset_id
    ORDER BY k.account_id, k.asset_id
    ON CONFLICT (account_id, asset_id) DO NOTHING
"""


def _insert_entries(cursor: Any, entries: list[NewEntry]) -> dict[tuple[str, str], tuple]:
    """Insert the entries that are new, with their lines; (kind, reference) -> (id, created)
    of each inserted."""
    metadata = []
    for entry in entries:
        if entry.metadata is None:
            metadata.append(None)
            continue
        try:
            metadata.append(json.dumps(dict(entry.metadata)))
        except (TypeError, ValueError):
            raise InvalidEntry(
                "Metadata must be JSON-serialisable.",
                extra={"kind": entry.kind, "reference": entry.reference},
            ) from None
    positions, account_ids, asset_ids, buckets, amounts = [], [], [], [], []
    for position, entry in enumerate(entries, 1):
        for line in entry.lines:
            positions.append(position)
            account_ids.append(line.account_id)
            asset_ids.append(line.asset_id)
            buckets.append(str(line.bucket))
            amounts.append(line.amount)
    cursor.execute(
        _INSERT_ENTRIES,
        {
            "kinds": texts([e.kind for e in entries]),
            "references": texts([e.reference for e in entries]),
            "metadata": texts(metadata),
            "entry": ints(positions),
            "account": ints(account_ids),
            "asset": ints(asset_ids),
            "bucket": texts(buckets),
            "amount": ints(amounts),
        },
    )
    return {(kind, reference): (id_, created_at) for id_, kind, reference, created_at in cursor}


def _existing_entries(
    cursor: Any, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, Counter]]:
    cursor.execute(_EXISTING_LINES, [texts([k for k, _ in keys]), texts([r for _, r in keys])])
    found: dict[tuple[str, str], tuple[int, Counter]] = {}
    for kind, reference, entry_id, account_id, asset_id, bucket, amount in cursor:
        _, signature = found.setdefault((kind, reference), (entry_id, Counter()))
        signature[(account_id, asset_id, bucket, int(amount))] += 1
    return found


class _Move:
    """One balance's net change over the entries, and the lowest point (relative to the start)
    each bucket reaches after an entry that touches it (None: no entry touches the bucket)."""

    __slots__ = ("available", "held", "low_available", "low_held")

    def __init__(self) -> None:
        self.available = self.held = 0
        self.low_available: int | None = None
        self.low_held: int | None = None


def _moves(entries: list[NewEntry]) -> dict[Key, _Move]:
    moves: dict[Key, _Move] = {}
    for entry in entries:
        touched: list[tuple[_Move, str]] = []
        for line in entry.lines:
            key = (line.account_id, line.asset_id)
            move = moves.get(key)
            if move is None:
                move = moves[key] = _Move()
            if line.bucket == _AVAILABLE:
                move.available += line.amount
            else:
                move.held += line.amount
            touched.append((move, line.bucket))
        # The guard applies after the whole entry, as posting it alone would.
        for move, bucket in touched:
            if bucket == _AVAILABLE:
                if move.low_available is None or move.available < move.low_available:
                    move.low_available = move.available
            elif move.low_held is None or move.held < move.low_held:
                move.low_held = move.held
    return moves


def _run_moves(
    cursor: Any, keys: list[Key], moves: dict[Key, _Move]
) -> dict[Key, BalanceChange | None]:
    """Lock and move the balances of ``keys``; returns those moved, with the new balance of
    each trader's (None for system accounts: nobody listens to them)."""
    chosen = [moves[key] for key in keys]
    cursor.execute(
        _MOVE_BALANCES,
        [
            _GUARDED_SYSTEM,
            ints([k[0] for k in keys]),
            ints([k[1] for k in keys]),
            ints([m.available for m in chosen]),
            ints([m.held for m in chosen]),
            ints([m.low_available for m in chosen]),
            ints([m.low_held for m in chosen]),
        ],
    )
    return {
        (account_id, asset_id): None
        if is_system
        else BalanceChange(account_id, asset_id, symbol, int(available), int(held), version)
        for account_id, asset_id, is_system, symbol, available, held, version in cursor
    }


def _move_balances(cursor: Any, entries: list[NewEntry]) -> list[BalanceChange]:
    """Apply the entries to their balances; the traders' balances after them."""
    moves = _moves(entries)
    keys = sorted(moves)
    moved = _run_moves(cursor, keys, moves)
    left = [key for key in keys if key not in moved]
    if left:
        found = _select_for_update(cursor, left)
        if missing := [key for key in left if key not in found]:
            # Rows created here are locked in a second sorted pass. That stays deadlock-free: a
            # transaction only waits on a row another one inserted after that one finished
            # locking.
            cursor.execute(
                _CREATE_BALANCES,
                [
                    Account.Kind.SYSTEM.value,
                    ints([k[0] for k in missing]),
                    ints([k[1] for k in missing]),
                ],
            )
            moved |= _run_moves(cursor, missing, moves)
            left = [key for key in keys if key not in moved]
    if not left:
        return [moved[key] for key in keys if moved[key] is not None]  # type: ignore[misc]
    positions = _select_for_update(cursor, keys)
    unknown = [key for key in left if key not in positions]
    if unknown:
        raise InvalidEntry(
            "A line names an unknown account or asset.",
            extra={"positions": [{"account_id": a, "asset_id": s} for a, s in unknown]},
        )
    # The guard held a balance back: replay from the balances as they were to name the entry.
    for key in moved:
        positions[key].available -= moves[key].available
        positions[key].held -= moves[key].held
    _replay(entries, positions)
    raise AssertionError("the ledger's guard and its replay disagree")


class _Position:
    __slots__ = ("available", "guarded", "held")

    def __init__(self, available: int, held: int, guarded: bool) -> None:
        self.available = available
        self.held = held
        self.guarded = guarded


def _select_for_update(cursor: Any, keys: list[Key]) -> dict[Key, _Position]:
    cursor.execute(
        _SELECT_BALANCES,
        [_GUARDED_SYSTEM, ints([k[0] for k in keys]), ints([k[1] for k in keys])],
    )
    return {
        (account_id, asset_id): _Position(int(available), int(held), guarded)
        for _, account_id, asset_id, available, held, guarded in cursor
    }


def _replay(entries: list[NewEntry], positions: dict[Key, _Position]) -> None:
    for entry in entries:
        touched: dict[tuple[Key, str], int] = {}
        for line in entry.lines:
            key = (line.account_id, line.asset_id)
            position = positions[key]
            if line.bucket == Bucket.AVAILABLE:
                position.available += line.amount
            else:
                position.held += line.amount
            touched[(key, line.bucket)] = touched.get((key, line.bucket), 0) + line.amount
        for (key, bucket), delta in touched.items():
            position = positions[key]
            after = position.available if bucket == Bucket.AVAILABLE else position.held
            if position.guarded and after < 0:
                raise InsufficientFunds(
                    f"Insufficient {bucket} balance.",
                    extra={
                        "kind": entry.kind,
                        "reference": entry.reference,
                        "account_id": key[0],
                        "asset_id": key[1],
                        "bucket": str(bucket),
                        "balance": str(after - delta),
                        "shortfall": str(-after),
                    },
                )
