"""Inputs and results of the withdrawal workflow and its activities (plain data: no Django, no
web3). Amounts are ints of base units; a withdrawal travels as its id (a UUID string)."""

from __future__ import annotations

from dataclasses import dataclass, field

WORKFLOW = "Withdrawal"

# Activity names: the workflow calls activities by name, so the workflow module never imports
# the activity module (which reaches Django and web3).
DECIDE = "withdrawals.decide"
PAY = "withdrawals.pay"
CONFIRMATIONS = "withdrawals.confirmations"
COMPLETE = "withdrawals.complete"
FAIL = "withdrawals.fail"
RELEASE = "withdrawals.release"

# Signals (admin approve / reject, trader cancel) and the state query.
SIGNAL_APPROVE = "approve"
SIGNAL_REJECT = "reject"
SIGNAL_CANCEL = "cancel"
QUERY_STATE = "state"

# Decisions (a signal's, or the approval timer's).
APPROVE = "approve"
REJECT = "reject"
CANCEL = "cancel"
EXPIRE = "expire"
DECISIONS = (APPROVE, REJECT, CANCEL, EXPIRE)

# The withdrawal states the workflow reasons about (exchange.withdrawals.models.Withdrawal.State).
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
PAYING = "paying"
SUBMITTED = "submitted"
CONFIRMED = "confirmed"
REJECTED = "rejected"
EXPIRED = "expired"
CANCELLED = "cancelled"
FAILED = "failed"
PAYABLE_STATES = (APPROVED, PAYING, SUBMITTED)
UNPAID_STATES = (REJECTED, EXPIRED, CANCELLED)

# Payout errors retrying cannot fix (class names, as Temporal reports them).
VAULT_BALANCE_SHORT = "VaultBalanceShort"  # retried by the workflow, for a while
PAYOUT_CONFLICT = "PayoutConflict"  # the id is paid on chain with other parameters
NON_RETRYABLE_PAY_ERRORS = [
    "PayoutRejected",
    VAULT_BALANCE_SHORT,
    PAYOUT_CONFLICT,
    "WithdrawalsFrozen",
    "WithdrawalNotPayable",
    "WithdrawalNotFound",
]
NON_RETRYABLE_BOOKKEEPING_ERRORS = ["WithdrawalNotFound", "WithdrawalNotPayable"]


def workflow_id(withdrawal_id: str, prefix: str = "") -> str:
    """The workflow id is the withdrawal id (after an optional deployment-wide prefix)."""
    return f"{prefix}{withdrawal_id}"


@dataclass
class WithdrawalInput:
    withdrawal_id: str
    needs_approval: bool
    # Read from settings (and the withdrawal's approval deadline) when the workflow starts, so
    # the workflow itself reads no setting and no clock.
    approval_timeout_seconds: float = 72 * 3600
    confirmation_depth: int = 1
    poll_seconds: float = 2.0
    unfunded_timeout_seconds: float = 3600
    heartbeat_timeout_seconds: float = 10.0


@dataclass
class DecisionSignal:
    actor: str = ""
    note: str = ""


@dataclass
class DecideInput:
    withdrawal_id: str
    decision: str  # one of DECISIONS
    actor: str
    note: str = ""


@dataclass
class StateResult:
    state: str


@dataclass
class WithdrawalRef:
    withdrawal_id: str


@dataclass
class PayResult:
    tx_hash: str
    block_number: int
    confirmations: int
    already_paid: bool


@dataclass
class ConfirmationsResult:
    confirmations: int  # 0: the payout is not on the canonical chain (any more)


@dataclass
class CompleteInput:
    withdrawal_id: str
    confirmations: int


@dataclass
class FailInput:
    withdrawal_id: str
    reason: str
    # True: nothing left the vault under this id, so the hold goes back (after the service has
    # checked the chain agrees). False (a PayoutConflict): the hold stays for an operator.
    release: bool = True


@dataclass
class FailResult:
    failed: bool  # False: the chain shows the withdrawal paid after all; keep paying
    state: str


@dataclass
class WithdrawalResult:
    withdrawal_id: str
    state: str
    tx_hash: str = ""
    history: list[str] = field(default_factory=list)  # the states it went through
