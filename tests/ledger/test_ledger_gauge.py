"""The ledger-imbalance gauge follows the ledger check: 0 when balanced, the number of assets
out of balance otherwise."""

from __future__ import annotations

import time

from django.db import connection
from prometheus_client import REGISTRY

from exchange.accounts.models import Account
from exchange.markets.models import Asset
from exchange.ops import gauges

from .test_ledger_check import busy_ledger  # noqa: F401


def test_the_gauge_is_zero_on_a_balanced_ledger_and_counts_drifting_assets(
    busy_ledger: list[Account],  # noqa: F811
    weth: Asset,
) -> None:
    before = time.time()
    gauges.check_ledger()
    assert REGISTRY.get_sample_value("clearway_ledger_imbalance") == 0
    assert REGISTRY.get_sample_value("clearway_ledger_check_timestamp_seconds") >= before

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_balance SET available = available + 5 "
            "WHERE account_id = %s AND asset_id = %s",
            [busy_ledger[0].pk, weth.pk],
        )
    gauges.check_ledger()
    assert REGISTRY.get_sample_value("clearway_ledger_imbalance") == 1
