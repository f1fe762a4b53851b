"""The risk models in the admin: kill switch edited from the list, overrides by address."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from exchange.markets.models import Market
from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults
from exchange.risk.services import risk_override_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", None)
    client = Client()
    client.force_login(user)
    return client


def test_pages_render_and_overrides_are_searchable_by_address(
    admin_client: Client, market: Market, make_trader
) -> None:
    found, other = make_trader(), make_trader()
    for account in (found, other):
        risk_override_set(account=account, market=market, limits={"max_open_orders": 3})
    for url in (
        "/admin/risk/marketriskdefaults/",
        f"/admin/risk/marketriskdefaults/{market.pk}/change/",
        "/admin/risk/accountriskoverride/",
        "/admin/risk/accountriskoverride/add/",
        "/admin/risk/tiermarketallowlist/?tier=standard",
    ):
        assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(f"/admin/risk/accountriskoverride/?q={found.address[2:12]}")
    assert found.address in page.content.decode()
    assert other.address not in page.content.decode()


def test_kill_switch_is_editable_from_the_list(admin_client: Client, market: Market) -> None:
    defaults = MarketRiskDefaults.objects.get(market=market)
    response = admin_client.post(
        "/admin/risk/marketriskdefaults/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-market": str(defaults.pk),
            "form-0-kill_switch": "on",
            "_save": "Save",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MarketRiskDefaults.objects.get(market=market).kill_switch is True


def test_an_override_is_added_in_base_units(admin_client: Client, market: Market, trader) -> None:
    response = admin_client.post(
        "/admin/risk/accountriskoverride/add/",
        {
            "account": str(trader.pk),
            "market": str(market.pk),
            "max_position": "5000000000000000000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AccountRiskOverride.objects.get(account=trader).values() == {"max_position": 5 * 10**18}
