"""Settlement workflows. Deterministic: no Django, web3, clock or randomness here; every effect
is an activity, called by name (the activity module is never imported into the sandbox)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.settlement import types

BATCH_ID = SearchAttributeKey.for_keyword("BatchId")
SETTLEMENT_STATUS = SearchAttributeKey.for_keyword("SettlementStatus")


async def start_batch_settlement(
    batch_pk: int, batch_id: int, *, poll_seconds: float, workflow_id: str, status: str
) -> bool:
    """Start a batch's BatchSettlement as an abandoned child (it outlives its starter); False
    while a run with that workflow id is still open (the caller tries again later)."""
    try:
        await workflow.start_child_workflow(
            types.BATCH_WORKFLOW,
            types.BatchInput(batch_pk, batch_id, poll_seconds),
            id=workflow_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(BATCH_ID, str(batch_id)),
                    SearchAttributePair(SETTLEMENT_STATUS, status),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info("batch %s: its workflow id is still taken", batch_id)
        return False
    return True


# Remember this many started batches across continue-as-new (only unsubmitted ones matter, and
# there is at most one of those at a time).
STARTED_MEMORY = 20

CUT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
# At least once: a batch is retried until it is on chain, unless the contract refuses it.
SUBMIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=15),
    non_retryable_error_types=types.NON_RETRYABLE_SUBMIT_ERRORS,
)
BOOKKEEPING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    non_retryable_error_types=["BatchAbandoned"],
)


def _error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


@workflow.defn(name=types.BATCH_WORKFLOW)
class BatchSettlement:
    """One batch: submit it (retrying until it is on chain), wait for the confirmation depth,
    mark it confirmed. If the contract rejects it, mark it failed, which re-queues its trades."""

    def __init__(self) -> None:
        self.status = "built"

    @workflow.query
    def current_status(self) -> str:
        return self.status

    def _set_status(self, status: str) -> None:
        self.status = status
        workflow.upsert_search_attributes([SETTLEMENT_STATUS.value_set(status)])

    @workflow.run
    async def run(self, data: types.BatchInput) -> types.BatchResult:
        while True:
            try:
                submitted = await workflow.execute_activity(
                    types.SUBMIT,
                    data,
                    result_type=types.SubmitResult,
                    start_to_close_timeout=timedelta(seconds=120),
                    heartbeat_timeout=timedelta(seconds=5),
                    retry_policy=SUBMIT_RETRY,
                )
            except ActivityError as error:
                return await self._failed(data, error)
            if self.status != "submitted":
                self._set_status("submitted")
            confirmations, confirmed = submitted.confirmations, submitted.confirmed
            while not confirmed and confirmations > 0:
                await workflow.sleep(timedelta(seconds=data.poll_seconds))
                polled = await workflow.execute_activity(
                    types.CONFIRMATIONS,
                    types.ConfirmationsInput(data.batch_pk),
                    result_type=types.ConfirmationsResult,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=BOOKKEEPING_RETRY,
                )
                confirmations, confirmed = polled.confirmations, polled.confirmed
            if confirmed:
                break
            # Not on the canonical chain any more (a reorg): submit again; the vault client
            # finds the batch if it was re-included meanwhile.
            workflow.logger.warning("batch %s left the chain; resubmitting", data.batch_id)

        await workflow.execute_activity(
            types.MARK_CONFIRMED,
            types.MarkConfirmedInput(data.batch_pk, confirmations),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._set_status("confirmed")
        return types.BatchResult(data.batch_id, "confirmed", submitted.tx_hash)

    async def _failed(self, data: types.BatchInput, error: ActivityError) -> types.BatchResult:
        kind = _error_type(error)
        if kind == "BatchAbandoned":
            self._set_status("failed")
            return types.BatchResult(data.batch_id, "abandoned")
        if kind not in types.NON_RETRYABLE_SUBMIT_ERRORS:
            raise error  # cannot happen with an unlimited retry policy; fail loudly if it does
        reason = f"{kind}: {error.cause.message if error.cause else error}"
        workflow.logger.error("batch %s rejected: %s", data.batch_id, reason)
        await workflow.execute_activity(
            types.MARK_FAILED,
            types.MarkFailedInput(data.batch_pk, reason, id_used_on_chain=kind == "BatchConflict"),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=BOOKKEEPING_RETRY,
        )
        self._set_status("failed")
        return types.BatchResult(data.batch_id, "failed")


@workflow.defn(name=types.SCHEDULER_WORKFLOW)
class SettlementScheduler:
    """Forever: cut a batch when one is due (an activity that waits for that) and start its
    BatchSettlement child, abandoned on close so batches finish whatever happens here."""

    def __init__(self) -> None:
        self.last_batch_id = 0

    @workflow.query
    def last_batch(self) -> int:
        return self.last_batch_id

    @workflow.run
    async def run(self, data: types.SchedulerInput) -> None:
        started = list(data.started)
        for _ in range(data.iterations_per_run):
            result = await workflow.execute_activity(
                types.CUT,
                types.CutInput(started=started),
                result_type=types.CutResult,
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=5),
                retry_policy=CUT_RETRY,
            )
            if result.cut is not None:
                self.last_batch_id = result.cut.batch_id
                workflow.upsert_search_attributes(
                    [
                        BATCH_ID.value_set(str(result.cut.batch_id)),
                        SETTLEMENT_STATUS.value_set("scheduling"),
                    ]
                )
            blocked = False
            for batch in result.awaiting:
                if batch.batch_pk in started:
                    continue
                if await self._start(batch, data):
                    started = [*started, batch.batch_pk][-STARTED_MEMORY:]
                else:
                    blocked = True
            if blocked:
                # The id belongs to a batch workflow still closing (its batch failed and gave
                # the id back): try again in a moment.
                await workflow.sleep(timedelta(seconds=1))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            types.SchedulerInput(
                poll_seconds=data.poll_seconds,
                iterations_per_run=data.iterations_per_run,
                id_prefix=data.id_prefix,
                started=started,
            )
        )

    async def _start(self, batch: types.BatchRef, data: types.SchedulerInput) -> bool:
        return await start_batch_settlement(
            batch.batch_pk,
            batch.batch_id,
            poll_seconds=data.poll_seconds,
            workflow_id=types.batch_workflow_id(batch.batch_id, data.id_prefix),
            status="built",
        )
