"""POST /api/v1/orders/{id}/replace: amend a resting order, signed with EIP-712 ``Replace``.

Through the real client against a live server, with the real matching worker applying the
commands: priority, holds and both streams are what the worker did, checked against a clean
replay of the command log (book, fills, holds, ledger).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange.accounts.models import Account
from exchange.accounts.signatures import high_s_twin
from exchange.matching_worker.publish import Batch
from exchange.matching_worker.runner import Worker
from exchange.money import from_base_units
from exchange.risk.services import risk_override_set
from exchange.trading.models import Order, OrderCommand, OrderReplace
from tests.matching_worker.replay import assert_matches_clean_replay
from tests.trading.support import USDC, WETH, drain, expect_error


@pytest.fixture
def published(market) -> Iterator[tuple[Worker, list[Batch]]]:
    """The real matching worker; every committed batch is kept as it would be published."""
    batches: list[Batch] = []
    worker = Worker(batch_size=50, timer_seconds=3600, publish=batches.append)
    yield worker, batches
    worker._release_all()


def held(client, asset: str = "USDC") -> str:  # type: ignore[no-untyped-def]
    return client.balance(asset)["held"]


def buy_hold(market, price: int, quantity: int) -> int:  # type: ignore[no-untyped-def]
    notional = market.notional(price, quantity)
    return notional + -(-notional * max(market.maker_fee_bps, market.taker_fee_bps) // 10_000)


def test_quantity_down_at_the_same_price_keeps_priority_and_holds_exactly(
    trader, published, market
) -> None:
    worker, batches = published
    alice, bob, carol = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC), trader(weth=WETH)
    first = alice.place_order("WETH-USDC", "buy", quantity="0.3", price="2000")
    second = bob.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)
    batches.clear()

    answer = alice.replace_order(first, quantity="0.2")
    assert alice.last_response.status_code == 202
    assert answer["id"] == first["id"]
    assert drain(worker) == 1
    amended = alice.order(first["id"])
    assert (amended["quantity"], amended["price"], amended["status"]) == ("0.2", "2000", "open")
    assert amended["sequence"] == first["sequence"]  # kept its place
    assert held(alice) == from_base_units(buy_hold(market, 2000 * USDC, WETH // 5), 6)

    # Both streams: the level's new total, and alice's order state.
    market_events = [e for b in batches for e in b.market_events]
    assert [(e["type"], e["price"], e["quantity"]) for e in market_events] == [
        ("level", 2000 * USDC, 3 * WETH // 10)
    ]
    assert order_frames(batches, first) == [(first["id"], WETH // 5, 2000 * USDC, WETH // 5)]

    carol.place_order("WETH-USDC", "sell", quantity="0.2", price="2000", time_in_force="ioc")
    drain(worker)
    assert alice.order(first["id"])["status"] == "filled"  # still first in the queue
    assert bob.order(second["id"])["status"] == "open"
    assert held(alice) == "0"
    assert_matches_clean_replay([market])


def order_frames(batches: list, order: dict) -> list[tuple[int, int, int | None, int]]:
    """The order's frames on its owner's user stream: (id, remaining, price, quantity)."""
    owner = Order.objects.get(pk=order["id"]).account_id
    return [
        (e["order_id"], e["remaining_quantity"], e["price"], e["quantity"])
        for b in batches
        for e in b.user_events().get(owner, [])
        if e["type"] == "order"  # balance frames ride along: every posting announces one
    ]


def test_quantity_up_or_a_new_price_requeues_with_the_exact_hold(trader, published, market) -> None:
    worker, batches = published
    alice, bob, carol = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC), trader(weth=WETH)
    first = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    second = bob.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)

    alice.replace_order(first, quantity="0.2")
    drain(worker)
    amended = alice.order(first["id"])
    assert amended["quantity"] == "0.2"
    assert amended["sequence"] > second["sequence"]  # re-queued behind bob
    assert held(alice) == from_base_units(buy_hold(market, 2000 * USDC, WETH // 5), 6)

    batches.clear()
    alice.replace_order(amended, price="1990.5")
    drain(worker)
    assert alice.order(first["id"])["price"] == "1990.5"
    # A price-only amend reaches the user stream with the new price (it changes no quantity).
    assert order_frames(batches, first) == [(first["id"], WETH // 5, 1_990_500_000, WETH // 5)]
    assert held(alice) == from_base_units(buy_hold(market, 1_990_500_000, WETH // 5), 6)

    carol.place_order("WETH-USDC", "sell", quantity="0.1", price="1990.5", time_in_force="ioc")
    drain(worker)
    assert bob.order(second["id"])["status"] == "filled"  # bob kept the better price
    assert alice.order(first["id"])["filled_quantity"] == "0"
    assert_matches_clean_replay([market])


def test_a_new_price_that_crosses_trades_at_once(trader, worker, market) -> None:
    alice, bob = trader(usdc=10_000 * USDC), trader(weth=WETH)
    ask = bob.place_order("WETH-USDC", "sell", quantity="0.1", price="2010")
    bid = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)
    alice.replace_order(bid, price="2020")
    drain(worker)
    assert alice.order(bid["id"])["status"] == "filled"
    assert bob.order(ask["id"])["status"] == "filled"
    fills = alice.fills()["results"]
    assert [(f["price"], f["liquidity"]) for f in fills] == [("2010", "taker")]
    assert held(alice) == "0"
    assert_matches_clean_replay([market])


def test_a_partly_filled_order_amends_its_total_and_keeps_priority(trader, worker, market) -> None:
    alice, carol = trader(usdc=10_000 * USDC), trader(weth=WETH)
    bid = alice.place_order("WETH-USDC", "buy", quantity="0.3", price="2000")
    carol.place_order("WETH-USDC", "sell", quantity="0.1", price="2000", time_in_force="ioc")
    drain(worker)
    expect_error(lambda: alice.replace_order(bid, quantity="0.1"), 400,
                 "quantity_not_above_filled")  # fmt: skip
    alice.replace_order(bid, quantity="0.2")  # total: 0.1 filled + 0.1 left
    drain(worker)
    amended = alice.order(bid["id"])
    assert (amended["status"], amended["filled_quantity"], amended["quantity"]) == (
        "partially_filled", "0.1", "0.2",
    )  # fmt: skip
    assert amended["sequence"] == bid["sequence"]
    assert held(alice) == from_base_units(buy_hold(market, 2000 * USDC, WETH // 10), 6)
    assert_matches_clean_replay([market])


def test_an_amend_the_engine_refuses_when_applied_gives_its_hold_back(
    trader, worker, market
) -> None:
    alice, carol = trader(usdc=10_000 * USDC), trader(weth=WETH)
    bid = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)
    # Sequenced behind a sell that fills the order: the amend reaches an order that is gone.
    carol.place_order("WETH-USDC", "sell", quantity="0.1", price="2000", time_in_force="ioc")
    alice.replace_order(bid, quantity="0.5")
    replace = OrderReplace.objects.get()
    assert replace.hold_added == buy_hold(market, 2000 * USDC, WETH // 2) - buy_hold(
        market, 2000 * USDC, WETH // 10
    )
    assert held(alice) != "0"
    drain(worker)
    order = alice.order(bid["id"])
    assert (order["status"], order["quantity"]) == ("filled", "0.1")
    assert held(alice) == "0"
    assert_matches_clean_replay([market])


def test_refused_amends_have_stable_codes_and_change_nothing(trader, worker, market) -> None:
    alice, mallory = trader(usdc=2_000 * USDC), trader(usdc=10_000 * USDC)
    bid = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)
    commands = OrderCommand.objects.count()
    before = alice.balance("USDC")

    expect_error(lambda: mallory.replace_order(bid, quantity="0.2"), 404, "order_not_found")
    expect_error(lambda: alice.replace_order({**bid, "id": 10**9}, price="1"), 404,
                 "order_not_found")  # fmt: skip
    expect_error(lambda: alice.replace_order(bid), 400, "invalid_replace")
    expect_error(lambda: alice.replace_order(bid, price="2000.001"), 400, "price_not_on_tick")
    expect_error(lambda: alice.replace_order(bid, quantity="0.0001"), 400,
                 "quantity_not_on_lot")  # fmt: skip
    negative = {**alice.replace_body(bid, quantity="1"), "quantity": "-1"}
    expect_error(lambda: alice.submit_replace(bid["id"], negative), 400, "amount_not_positive")
    fullwidth = {**alice.replace_body(bid, quantity="1"), "quantity": "\uff11"}
    expect_error(lambda: alice.submit_replace(bid["id"], fullwidth), 400, "invalid_amount")
    expect_error(lambda: alice.replace_order(bid, quantity="2"), 409, "insufficient_funds")
    body = alice.replace_body(bid, price="1999")
    expect_error(lambda: alice.submit_replace(bid["id"], {**body, "price": "1998"}), 403,
                 "signer_mismatch")  # fmt: skip
    twin = {**body, "signature": high_s_twin(body["signature"])}
    expect_error(lambda: alice.submit_replace(bid["id"], twin), 400, "signature_not_canonical")
    # A replace signature names its order: it is no good for another one.
    other = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="1000")
    drain(worker)
    commands = OrderCommand.objects.count()
    expect_error(lambda: alice.submit_replace(other["id"], body), 403, "signer_mismatch")
    assert OrderCommand.objects.count() == commands
    assert alice.balance("USDC")["available"] == from_base_units(
        to_units(before["available"]) - buy_hold(market, 1000 * USDC, WETH // 10), 6
    )
    assert not OrderReplace.objects.exists()

    # One nonce, one amend: the same body again is the same amend, another body a conflict.
    alice.submit_replace(bid["id"], body)
    alice.submit_replace(bid["id"], body)
    assert alice.last_response.headers["Idempotent-Replayed"] == "true"
    assert OrderReplace.objects.count() == 1
    again = alice.replace_body(bid, price="1990", nonce=body["nonce"])
    expect_error(lambda: alice.submit_replace(bid["id"], again), 409, "nonce_reused")

    alice.cancel_order(bid["id"])
    drain(worker)
    expect_error(lambda: alice.replace_order(bid, price="1990"), 409, "order_not_open")
    market_order = alice.place_order("WETH-USDC", "buy", type="market", quantity="0.1",
                                     price="2000", time_in_force="ioc")  # fmt: skip
    expect_error(lambda: alice.replace_order(market_order, price="1990"), 409,
                 "order_not_replaceable")  # fmt: skip
    drain(worker)
    assert_matches_clean_replay([market])


def to_units(text: str) -> int:
    from exchange.money import to_base_units

    return to_base_units(text, 6)


def test_an_amend_is_held_to_the_per_order_risk_limits(trader, worker, market) -> None:
    alice = trader(usdc=10_000 * USDC)
    bid = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    drain(worker)
    risk_override_set(
        account=Account.objects.get(address=alice.address), market=market,
        limits={"max_order_quantity": WETH // 5},
    )  # fmt: skip
    expect_error(lambda: alice.replace_order(bid, quantity="0.3"), 422, "order_quantity_limit")
    alice.replace_order(bid, quantity="0.2")
    assert alice.last_response.status_code == 202
