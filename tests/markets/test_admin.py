"""Assets and markets in the admin: staff with the markets permissions list, add and change them,
and halt or reopen a market with an action."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from exchange.markets.models import Asset, Market

pytestmark = pytest.mark.django_db


def staff_client(*, permissions: bool = True) -> Client:
    user = get_user_model().objects.create_user("ops", "ops@example.com", None, is_staff=True)
    if permissions:
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="markets"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def market() -> Market:
    call_command("bootstrap_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Market.objects.get(symbol="WETH-USDC")


@pytest.fixture
def staff() -> Client:
    return staff_client()


def test_changelists_and_add_and_change_pages_load_for_staff(staff: Client, market) -> None:
    weth = Asset.objects.get(symbol="WETH")
    for url, shows in (
        ("/admin/markets/asset/", "USDC"),
        ("/admin/markets/asset/?q=wrapped", "WETH"),
        ("/admin/markets/asset/add/", "token_address"),
        (f"/admin/markets/asset/{weth.pk}/change/", "Wrapped Ether"),
        ("/admin/markets/market/", "WETH-USDC"),
        ("/admin/markets/market/?status__exact=open", "WETH-USDC"),
        ("/admin/markets/market/add/", "tick_size"),
        (f"/admin/markets/market/{market.pk}/change/", "WETH-USDC"),
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert shows in response.content.decode(), url


def test_staff_without_the_markets_permissions_is_refused(market) -> None:
    client = staff_client(permissions=False)
    assert client.get("/admin/markets/market/").status_code == 403
    assert client.get(f"/admin/markets/market/{market.pk}/change/").status_code == 403


def test_an_asset_and_a_market_are_added_through_the_admin(staff: Client, market) -> None:
    response = staff.post(
        "/admin/markets/asset/add/", {"symbol": "WBTC", "name": "Wrapped Bitcoin", "decimals": 8}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    wbtc = Asset.objects.get(symbol="WBTC")
    form = {
        "symbol": "WBTC-USDC", "base": wbtc.pk, "quote": market.quote_id,
        "tick_size": 10_000, "lot_size": 10**5, "min_quantity": 10**5,
        "max_quantity": 100 * 10**8, "max_notional": 10**13, "maker_fee_bps": 2,
        "taker_fee_bps": 5, "status": "open", "default_stp": "cancel_taker",
    }  # fmt: skip

    # tick x lot must be whole quote base units (Market.clean): 1 x 10 is not 10^8.
    refused = staff.post("/admin/markets/market/add/", {**form, "tick_size": 1, "lot_size": 10})
    assert refused.status_code == 200
    assert "must be a multiple of 10^(base decimals)" in refused.content.decode()
    assert not Market.objects.filter(symbol="WBTC-USDC").exists()

    added = staff.post("/admin/markets/market/add/", form)
    assert added.status_code == 302, added.content.decode()[:2000]
    created = Market.objects.get(symbol="WBTC-USDC")
    assert (created.tick_size, created.lot_size, created.max_notional) == (10_000, 10**5, 10**13)


def act(staff: Client, action: str, *markets: Market):  # type: ignore[no-untyped-def]
    return staff.post(
        "/admin/markets/market/",
        {"action": action, "_selected_action": [m.pk for m in markets], "index": 0},
    )


def test_halt_and_reopen_actions(staff: Client, market) -> None:
    closed = Market.objects.create(
        symbol="USDC-WETH", base=market.quote, quote=market.base, tick_size=10**15,
        lot_size=10**6, min_quantity=10**6, max_quantity=10**12, max_notional=10**30,
        status=Market.Status.CLOSED,
    )  # fmt: skip

    assert act(staff, "halt_markets", market, closed).status_code == 302

    market.refresh_from_db()
    closed.refresh_from_db()
    assert market.status == Market.Status.HALTED
    assert closed.status == Market.Status.CLOSED  # a closed market is not revived as halted
    # Traders see it at once, and the admin log says who did it.
    assert APIClient().get("/api/v1/markets/WETH-USDC").json()["status"] == "halted"
    entry = LogEntry.objects.get(content_type__model="market", object_id=str(market.pk))
    assert (entry.user.username, entry.get_change_message()) == ("ops", "Status open -> halted.")

    assert act(staff, "reopen_markets", market, closed).status_code == 302

    market.refresh_from_db()
    closed.refresh_from_db()
    assert (market.status, closed.status) == (Market.Status.OPEN, Market.Status.CLOSED)


def test_actions_need_the_change_permission(market) -> None:
    user = get_user_model().objects.create_user("viewer", None, None, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_market"))
    client = Client()
    client.force_login(user)

    page = client.get("/admin/markets/market/")
    assert page.status_code == 200
    assert "halt_markets" not in page.content.decode()
    act(client, "halt_markets", market)

    market.refresh_from_db()
    assert market.status == Market.Status.OPEN
