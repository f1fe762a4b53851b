"""The Django side's Temporal client: start a withdrawal's workflow, signal decisions to it.

Called from ``transaction.on_commit`` (a withdrawal's workflow starts only once its hold is
committed) and from the admin. Failures are logged and reported, never raised into a committed
request: ``withdrawals_resume`` (``manage.py withdrawals_resume``, also safe at worker start-up)
starts whatever did not start.

Decisions are signalled with signal-with-start: if the workflow never started (Temporal was
down when the withdrawal was made), the decision starts it with the signal already delivered.
Workflow ids are never reused (REJECT_DUPLICATE): one withdrawal, one workflow run, ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TypeVar

from django.utils import timezone
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from exchange.withdrawals.conf import setting
from exchange.withdrawals.models import Withdrawal
from workflows.withdrawals import types

log = logging.getLogger(__name__)
T = TypeVar("T")

ACCOUNT_ADDRESS = SearchAttributeKey.for_keyword("AccountAddress")
ASSET = SearchAttributeKey.for_keyword("Asset")
AMOUNT = SearchAttributeKey.for_int("Amount")
WITHDRAWAL_STATE = SearchAttributeKey.for_keyword("WithdrawalState")

# Temporal's Int is 64-bit, which 18-decimal base units overflow from about 9.2 tokens, so the
# Amount search attribute is in millionths of a whole token, for every asset alike.
AMOUNT_DECIMALS = 6
INT64_MAX = 2**63 - 1

# The signal that replays a decision already recorded in the database.
DECISION_SIGNALS = {
    Withdrawal.State.APPROVED: types.SIGNAL_APPROVE,
    Withdrawal.State.REJECTED: types.SIGNAL_REJECT,
    Withdrawal.State.CANCELLED: types.SIGNAL_CANCEL,
}


def workflow_id(withdrawal: Withdrawal) -> str:
    return types.workflow_id(str(withdrawal.id), setting("TEMPORAL_WORKFLOW_ID_PREFIX"))


def workflow_url(withdrawal: Withdrawal) -> str:
    base = str(setting("TEMPORAL_UI_URL")).rstrip("/")
    return f"{base}/namespaces/{setting('TEMPORAL_NAMESPACE')}/workflows/{workflow_id(withdrawal)}"


def search_amount(amount: int, decimals: int) -> int:
    """``amount`` base units as millionths of a whole token (rounded down), capped to Int64."""
    if decimals >= AMOUNT_DECIMALS:
        value = amount // 10 ** (decimals - AMOUNT_DECIMALS)
    else:
        value = amount * 10 ** (AMOUNT_DECIMALS - decimals)
    return min(value, INT64_MAX)


def search_attributes(withdrawal: Withdrawal, state: str | None = None) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(ACCOUNT_ADDRESS, withdrawal.account.address),
            SearchAttributePair(ASSET, withdrawal.asset.symbol),
            SearchAttributePair(
                AMOUNT, search_amount(int(withdrawal.amount), withdrawal.asset.decimals)
            ),
            SearchAttributePair(WITHDRAWAL_STATE, state or withdrawal.state),
        ]
    )


def workflow_input(withdrawal: Withdrawal, *, now: datetime | None = None) -> types.WithdrawalInput:
    """Everything the workflow needs to know from settings, read here: the workflow reads none.
    The approval timer runs to the withdrawal's recorded deadline, however late it starts."""
    now = now or timezone.now()
    timeout = float(setting("WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS"))
    if withdrawal.approval_deadline is not None:
        timeout = max(1.0, (withdrawal.approval_deadline - now).total_seconds())
    return types.WithdrawalInput(
        withdrawal_id=str(withdrawal.id),
        needs_approval=withdrawal.needs_approval,
        approval_timeout_seconds=timeout,
        confirmation_depth=int(setting("CONFIRMATION_DEPTH")),
        poll_seconds=float(setting("WITHDRAWAL_POLL_SECONDS")),
        unfunded_timeout_seconds=float(setting("WITHDRAWAL_UNFUNDED_TIMEOUT_SECONDS")),
        heartbeat_timeout_seconds=float(setting("WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS")),
    )


async def connect() -> Client:
    return await Client.connect(
        setting("TEMPORAL_ADDRESS"), namespace=setting("TEMPORAL_NAMESPACE")
    )


async def start(
    client: Client,
    withdrawal: Withdrawal,
    *,
    signal: str | None = None,
    decision: types.DecisionSignal | None = None,
    task_queue: str | None = None,
) -> bool:
    """Start the withdrawal's workflow (with ``signal``: signal it, starting it if needed).
    False when a plain start finds it already started (or finished)."""
    initial = (
        Withdrawal.State.PENDING_APPROVAL
        if withdrawal.needs_approval
        else Withdrawal.State.APPROVED
    )
    options = {}
    if signal is not None:
        options = {
            "start_signal": signal,
            "start_signal_args": [decision or types.DecisionSignal()],
        }
    try:
        await client.start_workflow(
            types.WORKFLOW,
            workflow_input(withdrawal),
            id=workflow_id(withdrawal),
            task_queue=task_queue or setting("TEMPORAL_TASK_QUEUE"),
            search_attributes=search_attributes(withdrawal, initial),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            **options,
        )
    except WorkflowAlreadyStartedError:
        # Finished already (a running one takes the signal). Nothing is left to tell it.
        return False
    return True


def run_async(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from sync code, whether or not this thread runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]


def _mark_started(withdrawal: Withdrawal) -> None:
    Withdrawal.objects.filter(pk=withdrawal.pk, workflow_started_at__isnull=True).update(
        workflow_started_at=timezone.now()
    )


def start_workflow(withdrawal: Withdrawal) -> bool:
    """Start the workflow of a just-committed withdrawal. False (logged) if Temporal could not
    be reached: withdrawals_resume starts it later."""

    async def go() -> bool:
        return await start(await connect(), withdrawal)

    try:
        run_async(go)
    except Exception:
        log.exception("withdrawals: could not start the workflow of %s", withdrawal.id)
        return False
    _mark_started(withdrawal)
    return True


def signal_decision(withdrawal: Withdrawal, signal: str, *, actor: str, note: str = "") -> bool:
    """Tell the workflow about a decision recorded in the database. False (logged) on failure;
    sending it again (the admin action, withdrawals_resume) is harmless."""

    async def go() -> bool:
        decision = types.DecisionSignal(actor=actor, note=note)
        return await start(await connect(), withdrawal, signal=signal, decision=decision)

    try:
        run_async(go)
    except Exception:
        log.exception("withdrawals: could not signal %s to %s", signal, withdrawal.id)
        return False
    _mark_started(withdrawal)
    return True


def withdrawals_resume() -> tuple[int, int]:
    """Start the workflow of every withdrawal whose start never went through; a decision
    already recorded is delivered as the start signal. Returns (started, failed)."""
    started = failed = 0
    rows = Withdrawal.objects.filter(workflow_started_at__isnull=True).select_related(
        "account", "asset"
    )
    for withdrawal in rows.order_by("created_at"):
        signal = DECISION_SIGNALS.get(withdrawal.state) if withdrawal.needs_approval else None
        if signal is not None:
            ok = signal_decision(withdrawal, signal, actor=withdrawal.decided_by or "resume")
        elif withdrawal.state in (Withdrawal.State.PENDING_APPROVAL, Withdrawal.State.APPROVED):
            ok = start_workflow(withdrawal)
        else:
            continue  # a state only the workflow reaches: it ran
        started, failed = (started + 1, failed) if ok else (started, failed + 1)
    return started, failed
