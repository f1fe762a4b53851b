from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from exchange.accounts.models import Account
from exchange.ledger import services
from exchange.ledger.models import JournalEntry
from exchange.markets.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_admin_shows_accounts_balances_and_entries_read_only(
    admin_client: Client, trader: Account, usdc: Asset
) -> None:
    entry = services.credit_deposit(account=trader, asset=usdc, amount=5, reference="tx")
    for url in (
        f"/admin/accounts/account/?q={trader.address[:10]}&kind__exact=trader",
        "/admin/accounts/authtoken/",
        "/admin/ledger/balance/",
        "/admin/ledger/journalentry/?kind__exact=deposit",
        f"/admin/ledger/journalentry/{entry.pk}/change/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert trader.address in admin_client.get("/admin/ledger/balance/").content.decode()
    assert admin_client.get("/admin/ledger/balance/add/").status_code == 403
    page = admin_client.post(f"/admin/ledger/journalentry/{entry.pk}/delete/", {"post": "yes"})
    assert page.status_code == 403
    assert JournalEntry.objects.filter(pk=entry.pk).exists()
