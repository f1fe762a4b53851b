"""Periodic samples behind the ops gauges (exchange.ops.metrics), run by the Temporal worker:
queues and their oldest item every few seconds, the ledger check and the vault reconciliation
every few minutes (they scan every balance and journal line)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.ledger.management.commands.ledger_check import AssetReport, collect_reports
from exchange.markets.models import Asset
from exchange.ops import metrics
from exchange.trading.models import Trade
from exchange.withdrawals.models import Withdrawal

log = logging.getLogger(__name__)

UNSETTLED = (
    Trade.SettlementStatus.MATCHED,
    Trade.SettlementStatus.BATCHED,
    Trade.SettlementStatus.SUBMITTED,
)
# balanceOf is all the reconciliation asks of a token: the standard ERC-20 signature.
ERC20_BALANCE_OF = [
    {
        "name": "balanceOf",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    }
]


def _age(rows: QuerySet, field: str, now: datetime) -> float:
    oldest = rows.values_list(field, flat=True).first()
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def sample_queues(*, now: datetime | None = None) -> None:
    now = now or timezone.now()
    # (settlement_status, id) is indexed, and ids grow with creation: the first is the oldest.
    unsettled = Trade.objects.filter(settlement_status__in=UNSETTLED)
    metrics.SETTLEMENT_BACKLOG.set(unsettled.count())
    metrics.SETTLEMENT_OLDEST.set(_age(unsettled.order_by("id"), "created_at", now))
    waiting = Withdrawal.objects.filter(state=Withdrawal.State.PENDING_APPROVAL)
    metrics.WITHDRAWALS_AWAITING.set(waiting.count())
    metrics.WITHDRAWALS_OLDEST.set(_age(waiting.order_by("created_at"), "created_at", now))
    metrics.FROZEN_ACCOUNTS.set(Account.objects.filter(withdrawals_frozen=True).count())
    metrics.SAMPLED.set_to_current_time()


def check_ledger() -> dict[int, AssetReport]:
    reports = collect_reports()
    failing = [report.symbol for report in reports.values() if report.problems]
    if failing:
        log.critical("ledger check: %s out of balance; run manage.py ledger_check", failing)
    metrics.LEDGER_IMBALANCE.set(len(failing))
    metrics.LEDGER_CHECKED.set_to_current_time()
    return reports


def reconcile(reports: dict[int, AssetReport]) -> dict[str, int]:
    """Per asset with a token: the vault's token balance minus the ledger's traders + fees."""
    from exchange.chain.artifacts import checksum
    from exchange.custody.chain import clients

    chain = clients()
    differences: dict[str, int] = {}
    with chain.breaker.guard():
        for asset in Asset.objects.exclude(token_address="").order_by("symbol"):
            token = chain.w3.eth.contract(
                address=checksum(asset.token_address), abi=ERC20_BALANCE_OF
            )
            held = int(token.functions.balanceOf(chain.config.vault).call())
            report = reports.get(asset.pk)
            differences[asset.symbol] = held - (report.owed if report else 0)
    for symbol, difference in differences.items():
        metrics.RECONCILIATION_DIFFERENCE.labels(symbol).set(difference)
    return differences


def run_ledger_checks() -> None:
    """The ledger check, then (when a chain is configured) the reconciliation against it."""
    from exchange.custody.errors import ChainNotConfigured

    reports = check_ledger()
    try:
        reconcile(reports)
    except ChainNotConfigured:
        log.info("reconciliation skipped: no vault configured")
