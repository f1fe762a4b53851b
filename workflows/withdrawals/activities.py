"""Withdrawal activities: thin, synchronous (run on the worker's thread pool), one service call
each, and idempotent (keyed by the withdrawal id: its ledger references and its vault withdrawal
id), so Temporal may retry any of them at any point."""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from temporalio import activity

from workflows.withdrawals import types

F = TypeVar("F", bound=Callable[..., Any])


def django_activity(fn: F) -> F:
    """Treat an activity like a Django request: drop stale or broken connections before and
    after it (activity threads live long, and the ORM keeps one connection per thread)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.db import close_old_connections

        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return wrapper  # type: ignore[return-value]


@contextmanager
def heartbeating(every: float = 1.0) -> Iterator[None]:
    """Heartbeat from a side thread while a chain call blocks, so a worker that dies mid-payout
    is noticed after the heartbeat timeout rather than the whole start-to-close timeout."""
    stop = threading.Event()
    context = contextvars.copy_context()

    def beat() -> None:
        while not stop.wait(every):
            activity.heartbeat()

    thread = threading.Thread(target=context.run, args=(beat,), daemon=True, name="heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@activity.defn(name=types.DECIDE)
@django_activity
def decide(data: types.DecideInput) -> types.StateResult:
    from exchange.withdrawals import services

    decided = services.withdrawal_decide(
        withdrawal_id=data.withdrawal_id,
        decision=data.decision,
        actor=data.actor or "workflow",
        note=data.note,
    )
    return types.StateResult(decided.withdrawal.state)


@activity.defn(name=types.PAY)
@django_activity
def pay(data: types.WithdrawalRef) -> types.PayResult:
    from exchange.withdrawals import services

    with heartbeating():
        paid = services.withdrawal_pay(withdrawal_id=data.withdrawal_id)
    return types.PayResult(
        tx_hash=paid.withdrawal.tx_hash,
        block_number=paid.withdrawal.block_number or 0,
        confirmations=paid.confirmations,
        already_paid=paid.already_paid,
    )


@activity.defn(name=types.CONFIRMATIONS)
@django_activity
def confirmations(data: types.WithdrawalRef) -> types.ConfirmationsResult:
    from exchange.withdrawals import services

    return types.ConfirmationsResult(
        services.withdrawal_confirmations(withdrawal_id=data.withdrawal_id)
    )


@activity.defn(name=types.COMPLETE)
@django_activity
def complete(data: types.CompleteInput) -> types.StateResult:
    from exchange.withdrawals import services

    withdrawal = services.withdrawal_complete(
        withdrawal_id=data.withdrawal_id, confirmations=data.confirmations
    )
    return types.StateResult(withdrawal.state)


@activity.defn(name=types.FAIL)
@django_activity
def fail(data: types.FailInput) -> types.FailResult:
    from exchange.withdrawals import services

    outcome = services.withdrawal_fail(
        withdrawal_id=data.withdrawal_id, reason=data.reason, release=data.release
    )
    return types.FailResult(failed=outcome.failed, state=outcome.withdrawal.state)


@activity.defn(name=types.RELEASE)
@django_activity
def release(data: types.WithdrawalRef) -> types.StateResult:
    from exchange.withdrawals import services

    return types.StateResult(services.withdrawal_release(withdrawal_id=data.withdrawal_id).state)


ACTIVITIES = [decide, pay, confirmations, complete, fail, release]
