"""What a Temporal worker registers to run withdrawals (workers/temporal.py wires it)."""

from __future__ import annotations

from workflows.withdrawals.activities import ACTIVITIES
from workflows.withdrawals.workflows import WithdrawalWorkflow

WORKFLOWS = [WithdrawalWorkflow]

__all__ = ["ACTIVITIES", "WORKFLOWS"]
