"""Withdrawal activities: thin, synchronous (run on the worker's thread pool), one service call
each, and idempotent (keyed by the withdrawal id: its ledger references and its vault withdrawal
id), so Temporal may retry any of them at any point."""

from __future__ import annotations

from temporalio import activity

from workflows.activity_support import django_activity, heartbeating
from workflows.withdrawals import types


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
