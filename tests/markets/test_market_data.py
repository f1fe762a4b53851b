"""Public market data over REST: the book from the worker's published depth, recent trades."""

from __future__ import annotations

import json

import pytest
import yaml
from django.test import Client

from exchange.matching_worker.publish import book_key, read_depth
from exchange.trading.models import MarketCursor, Trade
from tests.realtime.support import depth_store, worker  # noqa: F401
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "WETH-USDC"
USDC = 10**6
WETH = 10**18


@pytest.fixture(autouse=True)
def _isolated(channel_layer, depth_store) -> None:  # noqa: F811
    """The worker publishes to a prefixed channel layer and this process's depth store."""


def get(path: str, **params: object):  # type: ignore[no-untyped-def]
    return Client().get(f"/api/v1/markets/{SYMBOL}/{path}", params)


@pytest.fixture
def book(trader, market, worker):  # noqa: F811
    """Two asks and a bid, applied by the worker: its depth is published."""
    seller = trader(weth=WETH)
    buyer = trader(usdc=5_000 * USDC)
    seller.place_order(SYMBOL, "sell", quantity="0.5", price="2000.5")
    seller.place_order(SYMBOL, "sell", quantity="0.25", price="2001")
    buyer.place_order(SYMBOL, "buy", quantity="1.5", price="1999.99")
    drain(worker)
    return read_depth(SYMBOL)


def test_the_book_is_the_published_depth_in_decimal_strings(book) -> None:
    cursor = MarketCursor.objects.get()
    assert (book["seq"], book["event_seq"]) == (cursor.applied_sequence, cursor.event_sequence)
    response = get("book")
    assert response.status_code == 200
    assert response.json() == {
        "market": SYMBOL, "seq": 3, "event_seq": book["event_seq"],
        "bids": [["1999.99", "1.5"]], "asks": [["2000.5", "0.5"], ["2001", "0.25"]],
    }  # fmt: skip
    assert get("book", depth=1).json()["asks"] == [["2000.5", "0.5"]]


def test_without_a_current_snapshot_the_book_comes_from_the_database(book, depth_store) -> None:  # noqa: F811
    published = get("book").json()
    depth_store.delete(book_key(SYMBOL))
    assert get("book").json() == published
    # A snapshot from another database (a reset deployment, another test run) is not served.
    stale = {**book, "seq": 99, "event_seq": 999, "bids": [[1, 1]]}
    depth_store.set(book_key(SYMBOL), json.dumps(stale))
    assert get("book").json() == published


def test_an_empty_market_has_an_empty_book_at_zero(market) -> None:
    assert get("book").json() == {
        "market": SYMBOL, "seq": 0, "event_seq": 0, "bids": [], "asks": [],
    }  # fmt: skip


@pytest.mark.parametrize("depth", ["0", "51"])
def test_a_bad_depth_is_a_validation_error(market, depth) -> None:
    response = get("book", depth=depth)
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert "depth" in response.json()["extra"]["fields"]


def test_a_depth_outside_the_numeric_grammar_is_an_invalid_number(market) -> None:
    response = get("book", depth="many")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_number")
    assert response.json()["extra"]["field"] == "depth"


@pytest.mark.parametrize("path", ["book", "trades"])
def test_an_unknown_market_is_not_found(market, path) -> None:
    response = Client().get(f"/api/v1/markets/DOGE-USDC/{path}")
    assert (response.status_code, response.json()["code"]) == (404, "market_not_found")


def test_trades_are_public_newest_first_and_paginated(trader, market, worker) -> None:  # noqa: F811
    seller = trader(weth=WETH)
    buyer = trader(usdc=5_000 * USDC)
    seller.place_order(SYMBOL, "sell", quantity="1", price="2000")
    for quantity in ("0.1", "0.2", "0.3"):
        buyer.place_order(SYMBOL, "buy", quantity=quantity, price="2000")
    drain(worker)

    first = get("trades", limit=2).json()
    assert [t["trade_id"] for t in first["results"]] == [f"{SYMBOL}-4-1", f"{SYMBOL}-3-1"]
    assert first["results"][0] == {
        "trade_id": f"{SYMBOL}-4-1", "seq": 4, "price": "2000", "quantity": "0.3",
        "taker_side": "buy",
        "created_at": first["results"][0]["created_at"],
    }  # fmt: skip
    rest = Client().get(first["next"]).json()
    assert [t["trade_id"] for t in rest["results"]] == [f"{SYMBOL}-2-1"]
    assert rest["next"] is None
    assert Trade.objects.count() == 3
    bad = get("trades", cursor="garbage")
    assert (bad.status_code, bad.json()["code"]) == (404, "not_found")


def test_book_and_trades_are_documented_with_error_codes() -> None:
    schema = yaml.safe_load(Client().get("/api/schema/").content)
    book = schema["paths"]["/api/v1/markets/{symbol}/book"]["get"]
    trades = schema["paths"]["/api/v1/markets/{symbol}/trades"]["get"]
    assert (book["operationId"], trades["operationId"]) == ("markets_book", "markets_trades")
    assert "market_not_found" in book["responses"]["404"]["description"]
    assert "validation_error" in book["responses"]["400"]["description"]
    assert "market_not_found" in trades["responses"]["404"]["description"]
    for operation in (book, trades):  # public: no bearer token required
        assert all("bearerAuth" not in scheme for scheme in operation.get("security", [{}]))
    assert {p["name"] for p in trades["parameters"]} >= {"symbol", "cursor", "limit"}
