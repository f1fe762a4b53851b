"""Staff API: GET /api/v1/risk/{address}, POST /api/v1/risk/{address}/limits."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from exchange.accounts.models import Account
from exchange.accounts.services import token_create
from exchange.markets.models import Market
from exchange.risk.errors import OrderQuantityLimit
from exchange.risk.models import AccountRiskOverride, MarketRiskDefaults
from exchange.risk.services import risk_check_order
from tests.factories import USDC, WETH
from tests.risk.support import snapshot

pytestmark = pytest.mark.django_db

DEFAULT_LIMITS = {
    "max_order_quantity": None,
    "max_order_notional": None,
    "max_open_orders": 500,
    "max_daily_notional": None,
    "max_position": None,
    "rate_limit_per_second": 10,
    "rate_limit_burst": 20,
}
NO_OVERRIDES = dict.fromkeys(DEFAULT_LIMITS)


def user_client(*, is_staff: bool, csrf: bool = False) -> APIClient:
    user = get_user_model().objects.create_user(
        f"user{get_user_model().objects.count()}", password=None, is_staff=is_staff
    )
    client = APIClient(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.fixture
def staff() -> APIClient:
    return user_client(is_staff=True)


def limits_url(account: Account) -> str:
    return f"/api/v1/risk/{account.address}/limits"


def test_staff_reads_the_effective_limits(staff: APIClient, market: Market, trader) -> None:
    MarketRiskDefaults.objects.filter(market=market).update(max_order_notional=50_000 * USDC)
    response = staff.get(f"/api/v1/risk/{trader.address}")
    assert response.status_code == 200
    defaults = {**DEFAULT_LIMITS, "max_order_notional": "50000"}
    assert response.json() == {
        "address": trader.address,
        "tier": "standard",
        "markets": [
            {
                "market": "WETH-USDC",
                "base": "WETH",
                "quote": "USDC",
                "allowed": True,
                "kill_switch": False,
                "limits": defaults,
                "defaults": defaults,
                "overrides": NO_OVERRIDES,
                "overridden": [],
            }
        ],
    }
    # Any letter case of the address names the same account.
    assert staff.get(f"/api/v1/risk/{trader.address.lower()}").json()["address"] == trader.address


def test_staff_sets_and_clears_overrides(staff: APIClient, market: Market, trader) -> None:
    response = staff.post(
        limits_url(trader),
        {
            "market": "WETH-USDC",
            "max_order_quantity": "2.5",
            "max_order_notional": "10000.5",
            "max_open_orders": 7,
            "rate_limit_burst": 5,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["limits"] == {
        **DEFAULT_LIMITS,
        "max_order_quantity": "2.5",
        "max_order_notional": "10000.5",
        "max_open_orders": 7,
        "rate_limit_burst": 5,
    }
    assert body["defaults"] == DEFAULT_LIMITS
    assert body["overridden"] == [
        "max_order_quantity",
        "max_order_notional",
        "max_open_orders",
        "rate_limit_burst",
    ]
    # Stored in base units, with each asset's decimals.
    override = AccountRiskOverride.objects.get(account=trader, market=market)
    assert override.values() == {
        "max_order_quantity": 2_500_000_000_000_000_000,
        "max_order_notional": 10_000_500_000,
        "max_open_orders": 7,
        "rate_limit_burst": 5,
    }
    # And enforced.
    with pytest.raises(OrderQuantityLimit):
        risk_check_order(
            account=trader,
            market=market,
            side="sell",
            price=None,
            quantity=3 * WETH,
            now=override.updated_at,
        )

    # null clears one override; the others stay.
    response = staff.post(
        limits_url(trader), {"market": "WETH-USDC", "max_order_quantity": None}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["overridden"] == [
        "max_order_notional",
        "max_open_orders",
        "rate_limit_burst",
    ]
    assert response.json()["overrides"]["max_order_quantity"] is None
    read = staff.get(f"/api/v1/risk/{trader.address}").json()["markets"][0]
    assert read == response.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"market": "WETH-USDC", "max_order_notional": "1.0000001"}, 400, "invalid_amount"),
        ({"market": "WETH-USDC", "max_position": "-1"}, 400, "amount_not_positive"),
        ({"market": "WETH-USDC", "max_open_orders": -1}, 400, "validation_error"),
        ({"market": "WETH-USDC", "rate_limit_per_second": 0}, 400, "validation_error"),
        ({"max_open_orders": 1}, 400, "validation_error"),
        ({"market": "DOGE-USDC", "max_open_orders": 1}, 404, "market_not_found"),
    ],
)
def test_invalid_requests_change_nothing(staff, market, trader, body, status, code) -> None:  # type: ignore[no-untyped-def]
    before = snapshot()
    response = staff.post(limits_url(trader), body, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert snapshot() == before


def test_unknown_account_is_404(staff: APIClient, market: Market) -> None:
    address = "0x" + "ab" * 20
    assert staff.get(f"/api/v1/risk/{address}").json()["code"] == "account_not_found"
    response = staff.post(f"/api/v1/risk/{address}/limits", {"market": "WETH-USDC"}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "account_not_found")


def test_only_staff_may_read_or_set(market: Market, trader) -> None:
    as_trader = APIClient()
    as_trader.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=trader).token}")
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Bearer cw_nope")
    clients = {
        "anonymous": (APIClient(), 401, "not_authenticated"),
        "trader": (as_trader, 403, "forbidden"),
        "non-staff user": (user_client(is_staff=False), 403, "forbidden"),
        "bad token": (bad_token, 401, "token_invalid"),
    }
    before = snapshot()
    for name, (client, status, code) in clients.items():
        for response in (
            client.get(f"/api/v1/risk/{trader.address}"),
            client.post(
                limits_url(trader), {"market": "WETH-USDC", "max_open_orders": 1}, format="json"
            ),
        ):
            assert response.status_code == status, name
            body = response.json()
            assert (body["code"], set(body)) == (code, {"code", "message", "extra"}), name
    assert snapshot() == before


def test_session_posts_need_the_csrf_token(market: Market, trader) -> None:
    client = user_client(is_staff=True, csrf=True)
    response = client.post(
        limits_url(trader), {"market": "WETH-USDC", "max_open_orders": 1}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert not AccountRiskOverride.objects.exists()


def test_endpoints_are_in_the_schema_with_their_shapes_and_errors() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    read = schema["paths"]["/api/v1/risk/{address}"]["get"]
    write = schema["paths"]["/api/v1/risk/{address}/limits"]["post"]
    assert (read["operationId"], write["operationId"]) == ("risk_get", "risk_limits_set")
    assert read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AccountRisk"
    )
    body = write["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/RiskOverridesInput")
    assert "forbidden" in read["responses"]["403"]["description"]
    assert "invalid_amount" in write["responses"]["400"]["description"]
    assert "market_not_found" in write["responses"]["404"]["description"]
    components = schema["components"]["schemas"]
    limits = components["AccountMarketRisk"]["properties"]["limits"]
    assert limits["allOf"][0]["$ref"].endswith("/RiskLimits") or limits["$ref"].endswith(
        "/RiskLimits"
    )
    assert {"cookieAuth": []} in read["security"]
