"""Withdrawal settings, each with its default until it moves into settings.py.

Every setting the withdrawal app reads goes through here (``getattr(settings, NAME, default)``)
so the list below is the whole configuration surface:

- ``WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS`` (72 h): a withdrawal waiting for an admin decision is
  rejected as ``expired`` after this long (a durable Temporal timer).
- ``CONFIRMATION_DEPTH`` (1, shared with custody): blocks a payout needs before its hold is
  consumed.
- ``WITHDRAWAL_POLL_SECONDS`` (2): how often the workflow polls a payout's confirmations.
- ``WITHDRAWAL_UNFUNDED_TIMEOUT_SECONDS`` (1 h): how long a payout keeps retrying while the
  account's vault balance is short (trades not settled yet) before the withdrawal fails.
- ``WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS`` (10): a worker that dies mid-payout is noticed after
  this long and the payout is retried on another worker.
- ``WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS`` (24 h): a new allowlisted address is usable after
  this long.
- ``WITHDRAWAL_ALLOWLIST_REQUIRED`` (False): every account must withdraw to allowlisted
  addresses; when False, only accounts that have ever allowlisted an address must.
- ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_TASK_QUEUE``, ``TEMPORAL_UI_URL``
  (settings.py) and ``TEMPORAL_WORKFLOW_ID_PREFIX`` (""): where withdrawal workflows run.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS": 72 * 3600,
    "CONFIRMATION_DEPTH": 1,
    "WITHDRAWAL_POLL_SECONDS": 2.0,
    "WITHDRAWAL_UNFUNDED_TIMEOUT_SECONDS": 3600,
    "WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS": 10.0,
    "WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS": 24 * 3600,
    "WITHDRAWAL_ALLOWLIST_REQUIRED": False,
    "TEMPORAL_ADDRESS": "127.0.0.1:7233",
    "TEMPORAL_NAMESPACE": "default",
    "TEMPORAL_TASK_QUEUE": "clearway",
    "TEMPORAL_UI_URL": "http://127.0.0.1:8233",
    "TEMPORAL_WORKFLOW_ID_PREFIX": "",
}


def setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
