"""Settlement activities: thin, synchronous (run on the worker's thread pool), one service call
each, and idempotent, so Temporal may retry any of them at any point."""

from __future__ import annotations

import time

from temporalio import activity

from workflows.activity_support import django_activity, heartbeating
from workflows.settlement import types


def _ref(batch) -> types.BatchRef:  # type: ignore[no-untyped-def]
    return types.BatchRef(batch.pk, batch.batch_id, batch.trade_count)


@activity.defn(name=types.CUT)
@django_activity
def cut(data: types.CutInput) -> types.CutResult:
    """Wait (heartbeating) until a batch is due, cut it and return it, for at most
    SETTLEMENT_CUT_WAIT_SECONDS. Also returns any batch still waiting for its workflow."""
    from exchange.custody import settlement
    from exchange.custody.chain import setting

    info = activity.info()
    # One batch at most per activity execution, however often it is retried.
    key = f"{info.workflow_run_id}:{info.activity_id}"
    max_trades = int(setting("SETTLEMENT_BATCH_MAX_TRADES", 1000))
    max_age = float(setting("SETTLEMENT_BATCH_MAX_SECONDS", 2))
    wait = float(setting("SETTLEMENT_CUT_WAIT_SECONDS", 5))
    poll = float(setting("SETTLEMENT_CUT_POLL_SECONDS", 0.1))
    started = set(data.started)
    deadline = time.monotonic() + wait
    while True:
        batch = None
        if settlement.batch_due(max_trades=max_trades, max_age_seconds=max_age):
            batch = settlement.batch_cut(max_trades=max_trades, key=key)
        awaiting = settlement.batches_awaiting_submission()
        unstarted = [b for b in awaiting if b.pk not in started]
        if batch is not None or unstarted or time.monotonic() >= deadline:
            return types.CutResult(
                cut=_ref(batch) if batch is not None else None,
                awaiting=[_ref(b) for b in awaiting],
            )
        activity.heartbeat()
        time.sleep(poll)


@activity.defn(name=types.SUBMIT)
@django_activity
def submit(data: types.BatchInput) -> types.SubmitResult:
    from exchange.custody import settlement
    from exchange.custody.chain import setting

    with heartbeating():
        done = settlement.batch_submit(batch_pk=data.batch_pk)
    depth = int(setting("CONFIRMATION_DEPTH", 1))
    return types.SubmitResult(
        tx_hash=done.batch.tx_hash,
        block_number=done.batch.block_number or 0,
        confirmations=done.confirmations,
        confirmed=done.confirmations >= depth,
        already_settled=done.already_settled,
    )


@activity.defn(name=types.CONFIRMATIONS)
@django_activity
def confirmations(data: types.ConfirmationsInput) -> types.ConfirmationsResult:
    from exchange.custody import settlement
    from exchange.custody.chain import setting

    count = settlement.batch_confirmations(batch_pk=data.batch_pk)
    return types.ConfirmationsResult(
        confirmations=count, confirmed=count >= int(setting("CONFIRMATION_DEPTH", 1))
    )


@activity.defn(name=types.MARK_CONFIRMED)
@django_activity
def mark_confirmed(data: types.MarkConfirmedInput) -> None:
    from exchange.custody import settlement

    settlement.batch_mark_confirmed(batch_pk=data.batch_pk, confirmations=data.confirmations)


@activity.defn(name=types.MARK_FAILED)
@django_activity
def mark_failed(data: types.MarkFailedInput) -> None:
    from exchange.custody import settlement

    settlement.batch_mark_failed(
        batch_pk=data.batch_pk, reason=data.reason, id_used_on_chain=data.id_used_on_chain
    )


ACTIVITIES = [cut, submit, confirmations, mark_confirmed, mark_failed]
