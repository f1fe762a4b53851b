"""The withdrawal workflow. Deterministic: no Django, web3, clock or randomness here; every
effect is an activity called by name (the activity module is never imported into the sandbox).

One workflow per withdrawal, its id the withdrawal id:

1. a withdrawal that needs approval waits for an ``approve``, ``reject`` or ``cancel`` signal,
   or for the approval timer (``expire``); the decision is recorded by the DECIDE activity,
   first writer wins, so the state it returns is what happens next (an admin's approval that
   reached the database just before the timer fired still pays);
2. an approved one is paid on chain (PAY, retried until the vault has it: the vault pays a
   withdrawal id at most once), then confirmations are polled to the depth (a payout that left
   the chain in a reorg is paid again, which finds it if it was re-included), then COMPLETE
   consumes the hold;
3. compensation lives here: a rejected, expired, cancelled or failed withdrawal's hold is
   released by the RELEASE activity.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.withdrawals import types

WITHDRAWAL_STATE = SearchAttributeKey.for_keyword("WithdrawalState")

# At least once: a payout is retried until the vault has it, unless it is refused for good.
PAY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
    non_retryable_error_types=types.NON_RETRYABLE_PAY_ERRORS,
)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=types.NON_RETRYABLE_BOOKKEEPING_ERRORS,
)
BOOKKEEPING_TIMEOUT = timedelta(seconds=30)
# Longer than the payout's receipt wait; a dead worker is noticed by the heartbeat timeout.
PAY_TIMEOUT = timedelta(seconds=180)


def _error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _error_text(error: ActivityError) -> str:
    cause = error.cause
    return f"{_error_type(error)}: {cause.message if cause is not None else error}"


@workflow.defn(name=types.WORKFLOW)
class WithdrawalWorkflow:
    def __init__(self) -> None:
        self.state = ""
        self.history: list[str] = []
        self.decision: tuple[str, types.DecisionSignal] | None = None
        self.tx_hash = ""

    # ---------------------------------------------------------------------- signals, query
    @workflow.signal(name=types.SIGNAL_APPROVE)
    def approve(self, signal: types.DecisionSignal) -> None:
        self._decide(types.APPROVE, signal)

    @workflow.signal(name=types.SIGNAL_REJECT)
    def reject(self, signal: types.DecisionSignal) -> None:
        self._decide(types.REJECT, signal)

    @workflow.signal(name=types.SIGNAL_CANCEL)
    def cancel(self, signal: types.DecisionSignal) -> None:
        self._decide(types.CANCEL, signal)

    def _decide(self, kind: str, signal: types.DecisionSignal) -> None:
        # The first decision counts; later ones (and any after the wait) are ignored here, and
        # the database already refused them (its first writer won too).
        if self.decision is None:
            self.decision = (kind, signal)

    @workflow.query(name=types.QUERY_STATE)
    def current_state(self) -> str:
        return self.state

    def _set_state(self, state: str, *, index: bool = True) -> None:
        if state == self.state:
            return
        self.state = state
        self.history.append(state)
        if index:
            workflow.upsert_search_attributes([WITHDRAWAL_STATE.value_set(state)])

    def _result(self, data: types.WithdrawalInput) -> types.WithdrawalResult:
        return types.WithdrawalResult(data.withdrawal_id, self.state, self.tx_hash, self.history)

    # ------------------------------------------------------------------------------- run
    @workflow.run
    async def run(self, data: types.WithdrawalInput) -> types.WithdrawalResult:
        # The starter indexed the initial state already.
        initial = types.PENDING_APPROVAL if data.needs_approval else types.APPROVED
        self._set_state(initial, index=False)
        if data.needs_approval:
            await self._await_decision(data)
        if self.state in types.UNPAID_STATES:
            await self._release(data)
            return self._result(data)
        if self.state in types.PAYABLE_STATES:
            await self._pay(data)
        return self._result(data)

    async def _await_decision(self, data: types.WithdrawalInput) -> None:
        with contextlib.suppress(TimeoutError):  # the approval deadline passed
            await workflow.wait_condition(
                lambda: self.decision is not None,
                timeout=timedelta(seconds=data.approval_timeout_seconds),
            )
        kind, signal = self.decision or (
            types.EXPIRE,
            types.DecisionSignal(actor="timer", note="no decision before the approval deadline"),
        )
        decided = await workflow.execute_activity(
            types.DECIDE,
            types.DecideInput(data.withdrawal_id, kind, signal.actor, signal.note),
            result_type=types.StateResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._set_state(decided.state)

    async def _release(self, data: types.WithdrawalInput) -> None:
        await workflow.execute_activity(
            types.RELEASE,
            types.WithdrawalRef(data.withdrawal_id),
            result_type=types.StateResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )

    async def _pay(self, data: types.WithdrawalInput) -> None:
        short_since = None
        while True:
            self._set_state(types.PAYING)
            try:
                paid = await workflow.execute_activity(
                    types.PAY,
                    types.WithdrawalRef(data.withdrawal_id),
                    result_type=types.PayResult,
                    start_to_close_timeout=PAY_TIMEOUT,
                    heartbeat_timeout=timedelta(seconds=data.heartbeat_timeout_seconds),
                    retry_policy=PAY_RETRY,
                )
            except ActivityError as error:
                kind = _error_type(error)
                if kind not in types.NON_RETRYABLE_PAY_ERRORS:
                    raise  # cannot happen with an unlimited retry policy; fail loudly if it does
                if kind == types.VAULT_BALANCE_SHORT:
                    # The account's latest trades may not be settled on the vault yet.
                    short_since = short_since or workflow.now()
                    waited = (workflow.now() - short_since).total_seconds()
                    if waited < data.unfunded_timeout_seconds:
                        await workflow.sleep(timedelta(seconds=data.poll_seconds))
                        continue
                if await self._fail(
                    data, _error_text(error), release=kind != types.PAYOUT_CONFLICT
                ):
                    return
                continue  # the chain shows it paid after all: paying again records that payout
            self.tx_hash = paid.tx_hash
            self._set_state(types.SUBMITTED)
            confirmations = paid.confirmations
            while 0 < confirmations < data.confirmation_depth:
                await workflow.sleep(timedelta(seconds=data.poll_seconds))
                polled = await workflow.execute_activity(
                    types.CONFIRMATIONS,
                    types.WithdrawalRef(data.withdrawal_id),
                    result_type=types.ConfirmationsResult,
                    start_to_close_timeout=BOOKKEEPING_TIMEOUT,
                    retry_policy=BOOKKEEPING_RETRY,
                )
                confirmations = polled.confirmations
            if confirmations >= data.confirmation_depth:
                break
            workflow.logger.warning(
                "withdrawal %s left the chain; paying again", data.withdrawal_id
            )
        await workflow.execute_activity(
            types.COMPLETE,
            types.CompleteInput(data.withdrawal_id, confirmations),
            result_type=types.StateResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._set_state(types.CONFIRMED)

    async def _fail(self, data: types.WithdrawalInput, reason: str, *, release: bool) -> bool:
        workflow.logger.error("withdrawal %s failed: %s", data.withdrawal_id, reason)
        failed = await workflow.execute_activity(
            types.FAIL,
            types.FailInput(data.withdrawal_id, reason, release=release),
            result_type=types.FailResult,
            start_to_close_timeout=BOOKKEEPING_TIMEOUT,
            retry_policy=BOOKKEEPING_RETRY,
        )
        if not failed.failed:
            return False
        self._set_state(failed.state)
        if release:
            await self._release(data)
        return True
