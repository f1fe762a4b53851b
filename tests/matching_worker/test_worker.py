"""The matching worker applied to the real command log written by the real API."""

from __future__ import annotations

import asyncio
import io
import os
from urllib.parse import urlsplit, urlunsplit

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.db import transaction

from exchange.accounts.models import SYSTEM_FEES, Account
from exchange.ledger.models import Balance
from exchange.markets.models import Market
from exchange.matching_worker.publish import (
    BackgroundPublisher,
    account_group,
    market_group,
    read_depth,
)
from exchange.matching_worker.runner import Worker
from exchange.trading.models import MarketCursor, Order, OrderCommand, Trade
from exchange.trading.services import next_sequence
from tests.matching_worker.replay import assert_matches_clean_replay
from tests.matching_worker.stream import (
    CommandWriter,
    StreamGenerator,
    make_accounts,
    setup_markets,
)
from tests.trading.support import drain

USDC = 10**6
WETH = 10**18


def balance(address: str, symbol: str) -> tuple[int, int]:
    row = Balance.objects.filter(account__address=address, asset__symbol=symbol).first()
    return (row.available, row.held) if row else (0, 0)


@pytest.fixture
def worker():
    worker = Worker(batch_size=50, timer_seconds=3600)
    yield worker
    worker._release_all()


def test_crossing_orders_trade_and_move_money_to_the_base_unit(trader, market, worker) -> None:
    seller = trader(weth=2 * WETH)
    buyer = trader(usdc=5_000 * USDC)
    ask = seller.place_order("WETH-USDC", "sell", quantity="1", price="2000")
    bid = buyer.place_order("WETH-USDC", "buy", quantity="0.4", price="2001")
    assert drain(worker) == 2

    trade = Trade.objects.get()
    assert trade.trade_id == "WETH-USDC-2-1"
    assert (trade.price, trade.quantity, trade.notional) == (2000 * USDC, 4 * 10**17, 800 * USDC)
    maker_fee, taker_fee = 160_000, 400_000  # 2 and 5 bps of 800 USDC
    assert (trade.maker_fee, trade.taker_fee) == (maker_fee, taker_fee)

    # The buyer (taker) held 0.4 x 2001 + 5 bps and paid 800 + its fee: the rest is released.
    assert balance(buyer.address, "USDC") == (5_000 * USDC - 800 * USDC - taker_fee, 0)
    assert balance(buyer.address, "WETH") == (4 * 10**17, 0)
    # The seller (maker) still holds the open 0.6 WETH and received 800 USDC less its fee.
    assert balance(seller.address, "WETH") == (WETH, 6 * 10**17)
    assert balance(seller.address, "USDC") == (800 * USDC - maker_fee, 0)
    fees = Balance.objects.get(account__address=SYSTEM_FEES, asset__symbol="USDC")
    assert fees.available == maker_fee + taker_fee

    assert Order.objects.get(pk=bid["id"]).status == "filled"
    ask_row = Order.objects.get(pk=ask["id"])
    assert (ask_row.status, ask_row.filled_quantity, ask_row.remaining_quantity) == (
        "partially_filled",
        4 * 10**17,
        6 * 10**17,
    )
    assert buyer.fills()["results"][0]["liquidity"] == "taker"
    assert seller.fills()["results"][0]["fee"] == "0.16"
    call_command("ledger_check", stdout=io.StringIO())


def test_cancel_releases_the_hold_and_restart_rebuilds_the_book(trader, market, worker) -> None:
    seller = trader(weth=WETH)
    first = seller.place_order("WETH-USDC", "sell", quantity="0.5", price="2100")
    seller.place_order("WETH-USDC", "sell", quantity="0.5", price="2100")
    drain(worker)
    seller.cancel_order(first["id"])
    drain(worker)
    assert Order.objects.get(pk=first["id"]).status == "cancelled"
    assert balance(seller.address, "WETH") == (5 * 10**17, 5 * 10**17)

    # A new worker (a restart) rebuilds the same book from the database and keeps matching.
    worker._release_all()
    restarted = Worker(batch_size=50, timer_seconds=3600)
    try:
        restarted.run_once()
        runner = next(iter(restarted.runners.values()))
        assert runner.engine.depth(5).asks == ((210000, 500),)
        buyer = trader(usdc=3_000 * USDC)
        buyer.place_order("WETH-USDC", "buy", quantity="0.5", price="2100", time_in_force="ioc")
        drain(restarted)
    finally:
        restarted._release_all()
    assert balance(seller.address, "WETH") == (5 * 10**17, 0)
    assert MarketCursor.objects.get(market=market).applied_sequence == 4
    assert Account.objects.get(address=buyer.address).orders.get().status == "filled"
    call_command("ledger_check", stdout=io.StringIO())


def test_post_only_that_would_take_is_rejected_and_released(trader, market, worker) -> None:
    seller = trader(weth=WETH)
    buyer = trader(usdc=3_000 * USDC)
    seller.place_order("WETH-USDC", "sell", quantity="0.5", price="2000")
    bid = buyer.place_order("WETH-USDC", "buy", quantity="0.5", price="2000", post_only=True)
    drain(worker)
    order = Order.objects.get(pk=bid["id"])
    assert (order.status, order.reason, order.hold_remaining) == (
        "rejected",
        "post_only_would_take",
        0,
    )
    assert balance(buyer.address, "USDC") == (3_000 * USDC, 0)
    assert not Trade.objects.exists()


def test_a_place_command_without_its_order_stops_the_market_with_the_reason(
    market, worker, caplog
) -> None:
    # The database does not check the command log's references; the worker does.
    weth = Market.objects.get(symbol="WETH-USDC")
    with transaction.atomic():
        sequence = next_sequence(weth)
        OrderCommand.objects.create(
            market=weth, sequence=sequence, kind=OrderCommand.Kind.PLACE, order_id=424242
        )
    assert worker.run_once() == 0
    assert "place command 1 names order 424242, which does not exist" in caplog.text
    assert MarketCursor.objects.get(market=weth).applied_sequence == 0


def test_pipelined_worker_reports_idle_only_once_everything_is_committed(transactional_db):
    markets = setup_markets()
    generator = StreamGenerator(markets, make_accounts(8), seed=11)
    CommandWriter(markets).write(generator.take(300))
    worker = Worker(batch_size=7, timer_seconds=3600, pipeline=True)
    try:
        assert drain(worker) == 300
        # drain() saw 0: every batch handed to the committer thread is in the database.
        assert all(
            cursor.applied_sequence == cursor.market.marketsequence.last_sequence
            for cursor in MarketCursor.objects.select_related("market__marketsequence")
        )
    finally:
        worker.close()
    assert_matches_clean_replay(list(Market.objects.filter(symbol__in=markets)))


def test_a_lost_fence_gives_up_that_market_and_rolls_back_only_its_group(transactional_db):
    markets = setup_markets()
    weth, wbtc = (Market.objects.get(symbol=symbol) for symbol in ("WETH-USDC", "WBTC-USDC"))
    worker = Worker(batch_size=500, timer_seconds=3600, claim_seconds=3600, pipeline=True)
    try:
        assert worker.run_once() == 0  # owns both markets, nothing to apply yet
        assert set(worker.runners) == {weth.pk, wbtc.pk}
        # Another writer moves WETH-USDC's cursor behind this worker's back (a split brain).
        MarketCursor.objects.filter(market=weth).update(event_sequence=10**9)
        CommandWriter(markets).write(StreamGenerator(markets, make_accounts(6), seed=9).take(80))

        # Both markets' batches go into one transaction; WETH-USDC's fence fails, so neither
        # commits. The worker gives WETH-USDC up and applies WBTC-USDC again after a reload.
        worker.run_once()
        worker.committer.drain()
        worker.run_once()
        assert set(worker.runners) == {wbtc.pk}
        assert MarketCursor.objects.get(market=weth).applied_sequence == 0
        assert MarketCursor.objects.get(market=wbtc).applied_sequence == 0
        assert not Trade.objects.exists()

        worker.runners[wbtc.pk].retry_at = 0  # skip the back-off pause
        drain(worker)
        assert (
            MarketCursor.objects.get(market=wbtc).applied_sequence
            == wbtc.marketsequence.last_sequence
        )
    finally:
        worker.close()
    assert_matches_clean_replay([wbtc])


async def receive(layer, channel: str) -> dict:  # type: ignore[no-untyped-def]
    return await asyncio.wait_for(layer.receive(channel), timeout=10)


def test_background_publisher_sends_to_listening_groups_after_commit(
    transactional_db, channel_layer, settings
) -> None:
    parts = urlsplit(settings.REDIS_URL)
    settings.REDIS_URL = urlunsplit(parts._replace(path=f"/{1 + os.getpid() % 15}"))
    markets = setup_markets()
    accounts = make_accounts(4)
    generator = StreamGenerator(markets, accounts, seed=5)
    CommandWriter(markets).write(generator.take(200))
    listener = async_to_sync(channel_layer.new_channel)()
    async_to_sync(channel_layer.group_add)(market_group("WETH-USDC"), listener)
    async_to_sync(channel_layer.group_add)(account_group(accounts[0]), listener)

    publisher = BackgroundPublisher()
    worker = Worker(batch_size=500, timer_seconds=3600, publish=publisher.submit, pipeline=True)
    try:
        drain(worker)
        assert publisher.flush(timeout=30)
    finally:
        worker.close()
        publisher.close()

    received = []
    while len({m["type"] for m in received}) < 2:
        received.append(async_to_sync(receive)(channel_layer, listener))
    events = {m["type"]: m["events"] for m in received}
    assert {"trade", "level"} <= {e["type"] for e in events["market.events"]}
    assert {"order", "balance"} <= {e["type"] for e in events["user.events"]}
    # Amounts of 2**64 base units and more (the stream funds 10**24 wei of WETH) get through.
    weth = [e for e in events["user.events"] if e["type"] == "balance" and e["asset"] == "WETH"]
    assert weth and weth[0]["available"] + weth[0]["held"] >= 2**64
    depth = read_depth("WETH-USDC")
    assert depth is not None
    assert depth["seq"] == MarketCursor.objects.get(market__symbol="WETH-USDC").applied_sequence
