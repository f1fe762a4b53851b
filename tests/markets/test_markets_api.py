"""Public market reference data: decimal strings in the assets' units, stable error codes."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    call_command("bootstrap_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return APIClient()


def test_markets_list_and_detail_are_public(api: APIClient) -> None:
    listed = api.get("/api/v1/markets")
    assert listed.status_code == 200
    assert [m["symbol"] for m in listed.json()] == ["WETH-USDC"]
    market = api.get("/api/v1/markets/WETH-USDC").json()
    assert market == listed.json()[0]
    assert (market["base"], market["quote"]) == ("WETH", "USDC")
    assert (market["base_decimals"], market["quote_decimals"]) == (18, 6)
    assert (market["tick_size"], market["lot_size"]) == ("0.01", "0.001")
    assert (market["min_quantity"], market["max_quantity"]) == ("0.001", "1000")
    assert (market["maker_fee_bps"], market["taker_fee_bps"]) == (2, 5)
    assert market["status"] == "open"


def test_unknown_market_is_404_with_code(api: APIClient) -> None:
    response = api.get("/api/v1/markets/DOGE-USDC")
    assert response.status_code == 404
    assert response.json() == {
        "code": "market_not_found",
        "message": "No market 'DOGE-USDC'.",
        "extra": {},
    }
