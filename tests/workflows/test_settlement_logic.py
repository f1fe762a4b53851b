"""Workflow logic of BatchSettlement and SettlementScheduler, with mocked activities registered
under the real activity names (no database, no chain) on the real Temporal dev server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError
from temporalio.worker import Worker

from exchange.custody.errors import RpcUnavailable, SettlementRejected
from tests.waiting import eventually, eventually_async, within
from workflows.settlement import types
from workflows.settlement.workflows import BatchSettlement, SettlementScheduler

STATUS = SearchAttributeKey.for_keyword("SettlementStatus")
BATCH_ID = SearchAttributeKey.for_keyword("BatchId")


class BatchConflict(Exception):  # the class name is what Temporal reports, as for the real one
    pass


@dataclass
class Script:
    """What the mocked activities answer, and what they were called with."""

    submits: list[Callable[[], types.SubmitResult]] = field(default_factory=list)
    confirmations: list[int] = field(default_factory=list)
    depth: int = 2
    cuts: list[types.CutResult] = field(default_factory=list)
    calls: list[tuple[str, object]] = field(default_factory=list)
    awaiting: list[types.BatchRef] = field(default_factory=list)

    def activities(self) -> list:
        @activity.defn(name=types.SUBMIT)
        async def submit(data: types.BatchInput) -> types.SubmitResult:
            self.calls.append(("submit", data.batch_id))
            answer = self.submits.pop(0) if len(self.submits) > 1 else self.submits[0]
            return answer()

        @activity.defn(name=types.CONFIRMATIONS)
        async def confirmations(data: types.ConfirmationsInput) -> types.ConfirmationsResult:
            count = self.confirmations.pop(0)
            self.calls.append(("confirmations", count))
            return types.ConfirmationsResult(count, count >= self.depth)

        @activity.defn(name=types.MARK_CONFIRMED)
        async def mark_confirmed(data: types.MarkConfirmedInput) -> None:
            self.calls.append(("confirmed", (data.batch_pk, data.confirmations)))

        @activity.defn(name=types.MARK_FAILED)
        async def mark_failed(data: types.MarkFailedInput) -> None:
            self.calls.append(("failed", (data.batch_pk, data.id_used_on_chain, data.reason)))

        @activity.defn(name=types.CUT)
        async def cut(data: types.CutInput) -> types.CutResult:
            if self.cuts:
                answer = self.cuts.pop(0)
                self.awaiting = answer.awaiting
                return answer
            # Like the real one: nothing new, but batches not on chain yet are listed.
            await asyncio.sleep(0.2)
            return types.CutResult(cut=None, awaiting=self.awaiting)

        return [submit, confirmations, mark_confirmed, mark_failed, cut]


def submitted(confirmations: int, depth: int = 2) -> Callable[[], types.SubmitResult]:
    return lambda: types.SubmitResult("0xabc", 10, confirmations, confirmations >= depth, False)


def raises(error: Exception) -> Callable[[], types.SubmitResult]:
    def answer() -> types.SubmitResult:
        raise error

    return answer


@workflow.defn(name="Blocker", sandboxed=False)
class Blocker:
    """Holds a workflow id until signalled, like a failed batch's workflow still closing."""

    def __init__(self) -> None:
        self.released = False

    @workflow.signal
    def release(self) -> None:
        self.released = True

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.released)


async def started(client: Client, workflow_id: str, workflow_type: str = types.BATCH_WORKFLOW):
    """The handle of ``workflow_id`` once a workflow of that type runs under it."""
    handle = client.get_workflow_handle(workflow_id, result_type=types.BatchResult)

    async def runs() -> bool:
        try:
            return (await handle.describe()).workflow_type == workflow_type
        except RPCError:
            return False

    await eventually_async(runs, what=f"{workflow_id} started")
    return handle


async def run_batch(client: Client, script: Script, batch_id: int = 7) -> tuple:
    queue = f"logic-{uuid.uuid4().hex}"
    async with Worker(
        client, task_queue=queue, workflows=[BatchSettlement], activities=script.activities()
    ):
        handle = await client.start_workflow(
            BatchSettlement.run,
            types.BatchInput(batch_pk=70, batch_id=batch_id, poll_seconds=0.05),
            id=f"logic-batch-{uuid.uuid4().hex}",
            task_queue=queue,
        )
        result = await within(handle.result(), what="the batch workflow's result")
        described = await handle.describe()
    return result, described.typed_search_attributes.get(STATUS)


async def test_waits_for_the_confirmation_depth_then_marks_confirmed(temporal_env):
    script = Script(submits=[submitted(1)], confirmations=[1, 1, 2])

    result, status = await run_batch(temporal_env.client, script)

    assert result == types.BatchResult(7, "confirmed", "0xabc")
    assert status == "confirmed"
    assert script.calls == [
        ("submit", 7),
        ("confirmations", 1),
        ("confirmations", 1),
        ("confirmations", 2),
        ("confirmed", (70, 2)),
    ]


async def test_a_batch_that_left_the_chain_is_submitted_again(temporal_env):
    script = Script(submits=[submitted(1), submitted(2)], confirmations=[0])

    result, _ = await run_batch(temporal_env.client, script)

    assert result.status == "confirmed"
    assert [name for name, _ in script.calls] == ["submit", "confirmations", "submit", "confirmed"]


async def test_rpc_errors_are_retried(temporal_env):
    script = Script(submits=[raises(RpcUnavailable("node down")), submitted(2)])

    result, _ = await run_batch(temporal_env.client, script)

    assert result.status == "confirmed"
    assert [name for name, _ in script.calls] == ["submit", "submit", "confirmed"]


@pytest.mark.parametrize(
    ("error", "id_used_on_chain"),
    [
        (SettlementRejected("InsufficientBalance(...)"), False),
        (BatchConflict("batch 7 is settled with another root"), True),
    ],
)
async def test_a_rejected_batch_is_marked_failed_without_retrying(
    temporal_env, error: Exception, id_used_on_chain: bool
):
    script = Script(submits=[raises(error)])

    result, status = await run_batch(temporal_env.client, script)

    assert result == types.BatchResult(7, "failed")
    assert status == "failed"
    [submit, (name, (pk, used, reason))] = script.calls
    assert submit == ("submit", 7)
    assert (name, pk, used) == ("failed", 70, id_used_on_chain)
    assert reason.startswith(type(error).__name__)


async def test_scheduler_starts_a_child_per_batch_and_waits_for_a_taken_id(temporal_env):
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex}"
    prefix = f"logic-{uuid.uuid4().hex[:8]}-"
    one, two = types.BatchRef(11, 1, 3), types.BatchRef(12, 2, 1)
    script = Script(
        submits=[submitted(2)],
        cuts=[
            types.CutResult(cut=one, awaiting=[one]),
            types.CutResult(cut=None, awaiting=[one]),  # already started: not again
            types.CutResult(cut=two, awaiting=[two]),  # its id is taken for now
            types.CutResult(cut=None, awaiting=[two]),
        ],
    )
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SettlementScheduler, BatchSettlement, Blocker],
        activities=script.activities(),
    ):
        blocker = await client.start_workflow(
            Blocker.run, id=types.batch_workflow_id(2, prefix), task_queue=queue
        )
        scheduler = await client.start_workflow(
            SettlementScheduler.run,
            types.SchedulerInput(poll_seconds=0.05, iterations_per_run=4, id_prefix=prefix),
            id=f"{prefix}scheduler",
            task_queue=queue,
        )
        first = await started(client, types.batch_workflow_id(1, prefix))
        assert (await within(first.result(), what="batch 1")).status == "confirmed"
        # Batch 2's id is held by the blocker: the scheduler keeps trying until it is free.
        await eventually(
            lambda: not script.cuts,
            what="the scheduler cut again while batch 2's id was taken",
            in_thread=False,
        )
        assert (await blocker.describe()).status == WorkflowExecutionStatus.RUNNING
        await blocker.signal(Blocker.release)
        await within(blocker.result(), what="the blocker")
        second = await started(client, types.batch_workflow_id(2, prefix))
        assert (await within(second.result(), what="batch 2")).status == "confirmed"
        described = await second.describe()
        assert described.typed_search_attributes.get(BATCH_ID) == "2"
        assert described.parent_id == f"{prefix}scheduler"

        # Four iterations per run: it continued as new, carrying the started batches.
        async def continued() -> bool:
            latest = await client.get_workflow_handle(scheduler.id).describe()
            return latest.run_id != scheduler.run_id

        await eventually_async(continued, what="the scheduler continued as new")
        current = client.get_workflow_handle(scheduler.id)
        assert await current.query(SettlementScheduler.last_batch) in (0, 2)
        await current.terminate()
    submits = [call for call in script.calls if call[0] == "submit"]
    assert submits == [("submit", 1), ("submit", 2)]


async def test_a_batch_confirmed_in_the_database_still_closes_its_workflow_after_a_worker_loss(
    temporal_env,
):
    """The state CI once hung in: the batch's row is confirmed (MARK_CONFIRMED, the only writer
    of that state, has run) but the workflow worker went away before the task that closes the
    workflow. The confirmation is not written again, and the next worker closes the workflow."""
    client = temporal_env.client
    queue = f"logic-{uuid.uuid4().hex}"
    script = Script(submits=[submitted(2)])
    written, worker_gone = asyncio.Event(), asyncio.Event()
    activities = {a.__temporal_activity_definition.name: a for a in script.activities()}  # type: ignore[attr-defined]
    record_confirmed = activities.pop(types.MARK_CONFIRMED)

    @activity.defn(name=types.MARK_CONFIRMED)
    async def mark_confirmed(data: types.MarkConfirmedInput) -> None:
        await record_confirmed(data)
        written.set()
        # Hold the activity's completion until the workflow worker is gone: the workflow can
        # then only close on another worker.
        await within(worker_gone.wait(), what="the workflow worker stopped")

    async with Worker(client, task_queue=queue, activities=[*activities.values(), mark_confirmed]):
        async with Worker(client, task_queue=queue, workflows=[BatchSettlement]):
            handle = await client.start_workflow(
                BatchSettlement.run,
                types.BatchInput(batch_pk=71, batch_id=8, poll_seconds=0.05),
                id=f"logic-batch-{uuid.uuid4().hex}",
                task_queue=queue,
            )
            await within(written.wait(), what="the batch marked confirmed")
        worker_gone.set()

        async def completion_recorded() -> bool:
            history = await handle.fetch_history()
            return any(
                e.HasField("activity_task_completed_event_attributes") for e in history.events[-3:]
            )

        await eventually_async(completion_recorded, what="MARK_CONFIRMED's completion recorded")
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        async with Worker(client, task_queue=queue, workflows=[BatchSettlement]):
            result = await within(handle.result(), what="the workflow closed by the new worker")

    assert result == types.BatchResult(8, "confirmed", "0xabc")
    assert [name for name, _ in script.calls] == ["submit", "confirmed"]
