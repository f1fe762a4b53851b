"""The custody admin pages render, read-only, each batch linking to its Temporal workflow."""

from __future__ import annotations

import pytest

from exchange.accounts.services import trader_get_or_create
from exchange.custody.models import Deposit, SettlementBatch

pytestmark = pytest.mark.django_db

VAULT = "0x" + "ab" * 20


def test_batch_and_deposit_admin_pages(admin_client, settings):
    settings.TEMPORAL_UI_URL = "http://temporal.example:8233"
    settings.TEMPORAL_NAMESPACE = "clearway"
    batch = SettlementBatch.objects.create(
        vault=VAULT, batch_id=42, trades_root="0x" + "11" * 32, deltas=[], trade_count=0
    )
    trader = trader_get_or_create(address="0x" + "cd" * 20)
    deposit = Deposit.objects.create(
        vault=VAULT, tx_hash="0x" + "22" * 32, log_index=0, block_number=1,
        block_hash="0x" + "33" * 32, depositor=trader.address, token=VAULT, account=trader,
        amount=5,
    )  # fmt: skip

    listing = admin_client.get("/admin/custody/settlementbatch/")
    assert listing.status_code == 200
    link = "http://temporal.example:8233/namespaces/clearway/workflows/settlement-batch-42"
    assert link in listing.content.decode()
    detail = admin_client.get(f"/admin/custody/settlementbatch/{batch.pk}/change/")
    assert detail.status_code == 200 and link in detail.content.decode()
    assert admin_client.get("/admin/custody/deposit/").status_code == 200
    assert admin_client.get(f"/admin/custody/deposit/{deposit.pk}/change/").status_code == 200
    assert admin_client.get("/admin/custody/deposit/add/").status_code == 403
    assert admin_client.get("/admin/custody/chaincursor/").status_code == 200
    assert admin_client.get("/admin/custody/processedblock/").status_code == 200
