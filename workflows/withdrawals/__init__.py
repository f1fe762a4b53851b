"""Withdrawals: one Withdrawal workflow per withdrawal (its id the withdrawal id) walks it
through approval, payout on the vault, confirmation and the ledger.

``from workflows.withdrawals import WORKFLOWS, ACTIVITIES`` gives what a worker registers. They
are loaded lazily: the workflow sandbox re-imports this package, and should not pull the
activity module in with it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("WORKFLOWS", "ACTIVITIES"):
        from workflows.withdrawals import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
