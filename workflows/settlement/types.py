"""Inputs and results of the settlement workflows and activities (plain data: no Django, no web3).

Money never crosses here: a batch travels as its database row id and contract batch id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Activity names: the workflows call activities by name, so the workflow modules never import
# the activity module (which reaches Django and web3).
CUT = "settlement.cut"
SUBMIT = "settlement.submit"
CONFIRMATIONS = "settlement.confirmations"
MARK_CONFIRMED = "settlement.mark_confirmed"
MARK_FAILED = "settlement.mark_failed"

SCHEDULER_WORKFLOW = "SettlementScheduler"
BATCH_WORKFLOW = "BatchSettlement"
SCHEDULER_ID = "settlement-scheduler"

# Errors that retrying the same batch cannot fix (their class names, as Temporal reports them).
NON_RETRYABLE_SUBMIT_ERRORS = [
    "SettlementRejected",  # the contract refused the batch's content
    "BatchConflict",  # the chain holds another batch under this id
    "UnbalancedDeltas",  # a netting bug: never worth gas
    "BatchAbandoned",  # the batch already failed
    "AssetNotOnChain",
]


def batch_workflow_id(batch_id: int, prefix: str = "") -> str:
    return f"{prefix}settlement-batch-{batch_id}"


@dataclass
class SchedulerInput:
    poll_seconds: float = 1.0  # how often a batch workflow polls its confirmations
    iterations_per_run: int = 300  # then continue-as-new
    id_prefix: str = ""  # workflow id prefix (several exchanges, or tests, on one namespace)
    # Batch row ids whose workflow this scheduler already started (kept across continue-as-new).
    started: list[int] = field(default_factory=list)


@dataclass
class CutInput:
    started: list[int] = field(default_factory=list)


@dataclass
class BatchRef:
    batch_pk: int
    batch_id: int
    trade_count: int


@dataclass
class CutResult:
    cut: BatchRef | None
    awaiting: list[BatchRef]  # batches not on chain yet (the one just cut, or an older one)


@dataclass
class BatchInput:
    batch_pk: int
    batch_id: int
    poll_seconds: float = 1.0


@dataclass
class SubmitResult:
    tx_hash: str
    block_number: int
    confirmations: int
    confirmed: bool  # confirmations reached the configured depth
    already_settled: bool


@dataclass
class ConfirmationsInput:
    batch_pk: int


@dataclass
class ConfirmationsResult:
    confirmations: int  # 0: not on the canonical chain (any more)
    confirmed: bool


@dataclass
class MarkConfirmedInput:
    batch_pk: int
    confirmations: int


@dataclass
class MarkFailedInput:
    batch_pk: int
    reason: str
    id_used_on_chain: bool = False


@dataclass
class BatchResult:
    batch_id: int
    status: str  # confirmed | failed | abandoned
    tx_hash: str = ""
