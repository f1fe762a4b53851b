"""GET /orders and /fills: filters, cursor pagination; the dead-man switch's renewal and disarm."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from exchange.markets.models import Market
from exchange.trading.models import OrderCommand
from exchange.trading.services import deadman_fire_due
from tests.factories import market_make
from tests.trading.support import USDC, WETH, drain, expect_error, ids


@pytest.fixture
def second_market(market: Market) -> Market:
    """WBTC-USDC next to the demo's WETH-USDC (the risk defaults and allowlist come with it)."""
    return market_make("WBTC", market.quote, maker_fee_bps=2, taker_fee_bps=5)


def test_orders_filter_by_market_and_status(trader, worker, second_market) -> None:
    alice = trader(usdc=100_000 * USDC)
    eth_open = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")["id"]
    eth_gone = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="1999")["id"]
    btc_open = alice.place_order("WBTC-USDC", "buy", quantity="0.01", price="30000")["id"]
    # Sequenced but not yet applied by the worker: accepted, which counts as open.
    assert ids(alice.orders(status="accepted")) == [btc_open, eth_gone, eth_open]
    assert ids(alice.orders(status="open")) == [btc_open, eth_gone, eth_open]
    assert drain(worker) == 3
    alice.cancel_order(eth_gone)
    assert drain(worker) == 1

    assert ids(alice.orders()) == [btc_open, eth_gone, eth_open]
    assert ids(alice.orders(market="WETH-USDC")) == [eth_gone, eth_open]
    assert ids(alice.orders(market="WBTC-USDC")) == [btc_open]
    assert ids(alice.orders(status="cancelled")) == [eth_gone]
    assert ids(alice.orders(status="open")) == [btc_open, eth_open]
    assert ids(alice.orders(status="accepted")) == []
    assert ids(alice.orders(market="WETH-USDC", status="open")) == [eth_open]
    assert ids(alice.orders(market="WBTC-USDC", status="cancelled")) == []
    assert ids(alice.orders(market="DOGE-USDC")) == []
    error = expect_error(lambda: alice.orders(status="sleeping"), 400, "validation_error")
    assert "status" in error.extra["fields"]


def test_orders_page_newest_first_with_a_cursor(trader) -> None:
    alice = trader(usdc=100_000 * USDC)
    placed = [
        alice.place_order("WETH-USDC", "buy", quantity="0.1", price=str(1990 + i))["id"]
        for i in range(5)
    ]

    first = alice.orders(limit=2)
    assert (ids(first), first["previous"]) == ([placed[4], placed[3]], None)
    second = alice.page(first["next"])
    assert ids(second) == [placed[2], placed[1]]
    last = alice.page(second["next"])
    assert (ids(last), last["next"]) == ([placed[0]], None)
    assert ids(alice.page(last["previous"])) == [placed[2], placed[1]]
    # Filters survive in the links: a filtered page's next page is filtered too.
    filtered = alice.orders(limit=1, status="open", market="WETH-USDC")
    assert "status=open" in filtered["next"]
    assert ids(alice.page(filtered["next"])) == [placed[3]]
    expect_error(lambda: alice.orders(cursor="not-a-cursor"), 404, "not_found")


def test_fills_page_newest_first_with_a_cursor(trader, worker) -> None:
    seller, buyer = trader(weth=3 * WETH), trader(usdc=100_000 * USDC)
    for price in ("2000", "2001", "2002"):
        seller.place_order("WETH-USDC", "sell", quantity="0.1", price=price)
    buyer.place_order("WETH-USDC", "buy", quantity="0.3", price="2002")
    assert drain(worker) == 4

    first = buyer.fills(limit=2)
    rest = buyer.page(first["next"])
    assert (len(first["results"]), len(rest["results"]), rest["next"]) == (2, 1, None)
    prices = [fill["price"] for fill in first["results"] + rest["results"]]
    assert prices == ["2002", "2001", "2000"]  # newest first: best ask traded first
    assert {fill["liquidity"] for fill in first["results"] + rest["results"]} == {"taker"}
    assert len(seller.fills(limit=500)["results"]) == 3
    assert buyer.fills(market="WBTC-USDC")["results"] == []


def deadline(state: dict) -> datetime:
    return datetime.fromisoformat(state["deadline"])


def test_renewing_the_dead_man_switch_pushes_its_deadline(trader) -> None:
    alice = trader(usdc=10_000 * USDC)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    start = timezone.now()

    armed = alice.cancel_after(60)
    renewed = alice.cancel_after(120)

    assert renewed["armed"] is True
    assert deadline(renewed) - deadline(armed) >= timedelta(seconds=60)
    # The first deadline has passed, but the renewal replaced it: nothing fires.
    assert deadman_fire_due(now=start + timedelta(seconds=90)) == 0
    assert not OrderCommand.objects.filter(kind="cancel_all").exists()
    assert deadman_fire_due(now=deadline(renewed) + timedelta(seconds=1)) == 1
    assert OrderCommand.objects.filter(kind="cancel_all").count() == 1


def test_timeout_zero_disarms_the_dead_man_switch(trader) -> None:
    alice = trader(usdc=10_000 * USDC)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    alice.cancel_after(30)

    assert alice.cancel_after(0) == {"armed": False, "deadline": None}

    assert deadman_fire_due(now=timezone.now() + timedelta(days=2)) == 0
    assert not OrderCommand.objects.filter(kind="cancel_all").exists()


@pytest.mark.parametrize("timeout", [-1, 86_401])
def test_dead_man_timeout_out_of_range_is_400(trader, timeout: int) -> None:
    alice = trader()
    error = expect_error(lambda: alice.cancel_after(timeout), 400, "validation_error")
    assert "timeout" in error.extra["fields"]
