"""Gauges sampled from the database by the Temporal worker (exchange.ops.gauges): what waits, for
how long, and whether the ledger balances. See docs/OPERATIONS.md, "Metrics"."""

from __future__ import annotations

from prometheus_client import Gauge

SETTLEMENT_BACKLOG = Gauge(
    "clearway_settlement_backlog_trades", "Trades matched but not yet settled on chain."
)
SETTLEMENT_OLDEST = Gauge(
    "clearway_settlement_oldest_unsettled_seconds",
    "Age of the oldest trade not yet settled on chain (0 when none).",
)
WITHDRAWALS_AWAITING = Gauge(
    "clearway_withdrawals_awaiting_approval", "Withdrawals waiting for an admin's decision."
)
WITHDRAWALS_OLDEST = Gauge(
    "clearway_withdrawals_oldest_awaiting_approval_seconds",
    "Age of the oldest withdrawal waiting for approval (0 when none).",
)
FROZEN_ACCOUNTS = Gauge(
    "clearway_accounts_withdrawals_frozen", "Accounts whose withdrawals are frozen."
)
SAMPLED = Gauge(
    "clearway_ops_sample_timestamp_seconds", "Unix time the queue gauges were last sampled."
)
LEDGER_IMBALANCE = Gauge(
    "clearway_ledger_imbalance",
    "Assets failing the ledger check (manage.py ledger_check); 0 when the ledger balances.",
)
LEDGER_CHECKED = Gauge(
    "clearway_ledger_check_timestamp_seconds", "Unix time of the last completed ledger check."
)
RECONCILIATION_DIFFERENCE = Gauge(
    "clearway_reconciliation_difference_base_units",
    "Tokens the vault contract holds minus what the ledger owes traders and fees, in base "
    "units (a float here: an indicator; ledger_check has the exact figures).",
    ["asset"],
)
