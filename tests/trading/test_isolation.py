"""No account reads or cancels another's orders, fills, balances or journal.

Through the real client against a live server, with the real matching worker applying the
commands, so "stays open" and "was cancelled" are what the worker did, not what was sequenced.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from exchange.trading.models import OrderCommand
from exchange.trading.services import deadman_fire_due
from tests.trading.support import USDC, WETH, drain, expect_error, ids


def test_reads_and_cancels_of_another_accounts_order_are_404(trader, worker) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    # Both use the same client order id: each must only ever resolve to its own order.
    theirs = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000",
                               client_order_id="same")  # fmt: skip
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="1999", client_order_id="only-a")
    mine = mallory.place_order("WETH-USDC", "buy", quantity="0.1", price="1990",
                               client_order_id="same")  # fmt: skip
    assert drain(worker) == 3
    commands = OrderCommand.objects.count()

    expect_error(lambda: mallory.order(theirs["id"]), 404, "order_not_found")
    expect_error(lambda: mallory.order_by_client_id("only-a"), 404, "order_not_found")
    assert mallory.order_by_client_id("same")["id"] == mine["id"]
    assert ids(mallory.orders()) == [mine["id"]]
    assert ids(mallory.orders(market="WETH-USDC", status="open")) == [mine["id"]]
    expect_error(lambda: mallory.cancel_order(theirs["id"]), 404, "order_not_found")

    assert OrderCommand.objects.count() == commands  # the refused cancel sequenced nothing
    assert alice.order(theirs["id"])["status"] == "open"
    assert alice.order_by_client_id("same")["id"] == theirs["id"]
    assert len(ids(alice.orders(status="open"))) == 2


def test_cancel_by_client_id_cancels_only_my_own_order(trader, worker) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    theirs = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000",
                               client_order_id="same")  # fmt: skip
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="1999", client_order_id="only-a")
    mine = mallory.place_order("WETH-USDC", "buy", quantity="0.1", price="1990",
                               client_order_id="same")  # fmt: skip
    assert drain(worker) == 3
    commands = OrderCommand.objects.count()

    expect_error(lambda: mallory.cancel_order_by_client_id("only-a"), 404, "order_not_found")
    expect_error(lambda: mallory.cancel_order_by_client_id("nope"), 404, "order_not_found")
    assert OrderCommand.objects.count() == commands  # refused cancels sequence nothing

    cancelled = mallory.cancel_order_by_client_id("same")
    assert mallory.last_response.status_code == 202
    assert cancelled["id"] == mine["id"]
    assert drain(worker) == 1
    assert mallory.order(mine["id"])["status"] == "cancelled"
    assert alice.order(theirs["id"])["status"] == "open"
    assert alice.order_by_client_id("only-a")["status"] == "open"
    assert mallory.balance("USDC")["held"] == "0"
    expect_error(lambda: mallory.cancel_order_by_client_id("same"), 409, "order_not_open")


def test_cancel_all_cancels_only_my_orders(trader, worker) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    theirs = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    mine = mallory.place_order("WETH-USDC", "buy", quantity="0.1", price="1990")
    assert drain(worker) == 2
    alice_usdc = alice.balance("USDC")

    assert mallory.cancel_all(market="WETH-USDC") == {"markets": ["WETH-USDC"]}
    assert drain(worker) == 1

    assert mallory.order(mine["id"])["status"] == "cancelled"
    assert mallory.balance("USDC")["held"] == "0"
    assert alice.order(theirs["id"])["status"] == "open"
    assert alice.balance("USDC") == alice_usdc  # its hold untouched
    # With nothing of mine open, a cancel-all sequences nothing at all.
    commands = OrderCommand.objects.count()
    assert mallory.cancel_all() == {"markets": []}
    assert OrderCommand.objects.count() == commands
    assert alice.order(theirs["id"])["status"] == "open"


def test_dead_man_switch_cancels_only_its_own_accounts_orders(trader, worker) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    theirs = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    mine = mallory.place_order("WETH-USDC", "buy", quantity="0.1", price="1990")
    assert drain(worker) == 2

    assert mallory.cancel_after(5)["armed"] is True
    assert deadman_fire_due(now=timezone.now() + timedelta(seconds=6)) == 1
    assert drain(worker) == 1

    fired = OrderCommand.objects.get(kind="cancel_all")
    assert fired.account.address == mallory.address
    assert mallory.order(mine["id"])["status"] == "cancelled"
    assert alice.order(theirs["id"])["status"] == "open"


def test_fills_balances_and_ledger_are_only_ever_my_own(trader, worker) -> None:
    seller, buyer = trader(weth=2 * WETH), trader(usdc=10_000 * USDC)
    mallory = trader(usdc=1_000 * USDC)
    ask = seller.place_order("WETH-USDC", "sell", quantity="1", price="2000")
    bid = buyer.place_order("WETH-USDC", "buy", quantity="0.5", price="2000")
    assert drain(worker) == 2

    # The trade happened between the two of them, and each sees its own side of it...
    [sold] = seller.fills()["results"]
    [bought] = buyer.fills()["results"]
    assert sold["trade_id"] == bought["trade_id"]
    assert (sold["order_id"], sold["side"], sold["liquidity"]) == (ask["id"], "sell", "maker")
    assert (bought["order_id"], bought["side"], bought["liquidity"]) == (bid["id"], "buy", "taker")

    # ...and a third account sees none of it: no fill, no order, no balance, no journal line.
    assert mallory.fills() == {"next": None, "previous": None, "results": []}
    assert mallory.fills(market="WETH-USDC")["results"] == []
    assert mallory.orders()["results"] == []
    expect_error(lambda: mallory.order(ask["id"]), 404, "order_not_found")
    assert mallory.balances() == [
        {"asset": "USDC", "available": "1000", "held": "0", "total": "1000"}
    ]
    [deposit] = mallory.ledger()["results"]
    assert (deposit["kind"], deposit["asset"], deposit["amount"]) == ("deposit", "USDC", "1000")
    # The journal does show trades to those who traded.
    assert "trade" in {line["kind"] for line in seller.ledger()["results"]}
