from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from exchange.accounts.models import Account
from exchange.ledger import services
from exchange.markets.models import Asset

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_trader: Callable[[], Account], usdc: Asset, weth: Asset) -> Account:
    alice = make_trader()
    services.credit_deposit(account=alice, asset=usdc, amount=1_500_000, reference="a:usdc")
    services.credit_deposit(account=alice, asset=weth, amount=10**18 + 1, reference="a:weth")
    services.hold(account=alice, asset=usdc, amount=250_000, reference="order:1")
    return alice


@pytest.fixture
def bob(make_trader: Callable[[], Account], usdc: Asset) -> Account:
    bob = make_trader()
    services.credit_deposit(account=bob, asset=usdc, amount=7, reference="b:usdc")
    return bob


def test_balances_are_my_own_as_decimal_strings(
    alice: Account, bob: Account, client_for: Callable[[Account], APIClient]
) -> None:
    response = client_for(alice).get("/api/v1/balances")

    assert response.status_code == 200
    assert response.json() == [
        {"asset": "USDC", "available": "1.25", "held": "0.25", "total": "1.5"},
        {
            "asset": "WETH",
            "available": "1.000000000000000001",
            "held": "0",
            "total": "1.000000000000000001",
        },
    ]
    assert client_for(bob).get("/api/v1/balances").json() == [
        {"asset": "USDC", "available": "0.000007", "held": "0", "total": "0.000007"}
    ]


def test_ledger_lists_my_own_lines_newest_first(
    alice: Account, bob: Account, client_for: Callable[[Account], APIClient]
) -> None:
    response = client_for(alice).get("/api/v1/ledger")

    assert response.status_code == 200
    lines = response.json()["results"]
    assert [(line["kind"], line["asset"], line["bucket"], line["amount"]) for line in lines] == [
        ("hold", "USDC", "held", "0.25"),
        ("hold", "USDC", "available", "-0.25"),
        ("deposit", "WETH", "available", "1.000000000000000001"),
        ("deposit", "USDC", "available", "1.5"),
    ]
    assert lines[0]["reference"] == "order:1"
    assert {"id", "entry_id", "created_at"} <= set(lines[0])

    bob_lines = client_for(bob).get("/api/v1/ledger").json()["results"]
    assert [(line["reference"], line["amount"]) for line in bob_lines] == [("b:usdc", "0.000007")]


def test_ledger_pages_with_a_cursor_and_filters_by_asset(
    alice: Account, client_for: Callable[[Account], APIClient]
) -> None:
    client = client_for(alice)
    first = client.get("/api/v1/ledger", {"limit": 3}).json()
    assert len(first["results"]) == 3
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    ids = [line["id"] for line in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)

    weth_only = client.get("/api/v1/ledger", {"asset": "WETH"}).json()["results"]
    assert [line["asset"] for line in weth_only] == ["WETH"]


def test_ledger_and_balances_need_a_trader_token(alice: Account) -> None:
    for path in ("/api/v1/balances", "/api/v1/ledger"):
        response = APIClient().get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
