"""The acceptance test: REST sign-in and orders, the matching worker, and what the sockets see.

Everything is real: the ASGI application, channels-redis, PostgreSQL, the live REST server and
the matching worker (in-process, as tests/matching_worker drives it).
"""

from __future__ import annotations

from zlib import crc32

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from exchange.accounts.models import SYSTEM_FEES
from exchange.ledger.models import Balance
from tests.realtime.support import SYMBOL, receive, receive_many
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
WETH = 10**18
PRICE = 2_000_010_000  # 2000.01 USDC per WETH, in USDC base units
QUANTITY = 123 * 10**15  # 0.123 WETH
NOTIONAL = 246_001_230  # PRICE * QUANTITY / 10**18 = 246.00123 USDC
MAKER_FEE = 49_201  # 2 bps of NOTIONAL = 49_200.246, rounded up
TAKER_FEE = 123_001  # 5 bps of NOTIONAL = 123_000.615, rounded up


def ledger_balance(address: str, symbol: str) -> dict[str, int]:
    row = Balance.objects.filter(account__address=address, asset__symbol=symbol).first()
    return {"available": row.available if row else 0, "held": row.held if row else 0}


def by_type(frames: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for frame in frames:
        grouped.setdefault(frame["type"], []).append(frame)
    return grouped


async def test_two_traders_cross_and_every_socket_sees_it(trader, market, worker, sockets) -> None:
    seller = await sync_to_async(trader)(weth=2 * WETH)
    buyer = await sync_to_async(trader)(usdc=1_000 * USDC)

    # The seller authenticates with the header, the buyer (as a browser must) with a frame.
    seller_ws = await sockets.open(
        "/ws/v1/user", headers=[(b"authorization", f"Bearer {seller.token}".encode())]
    )
    buyer_ws = await sockets.open("/ws/v1/user")
    await buyer_ws.send_json_to({"op": "auth", "token": buyer.token})
    seller_hello, buyer_hello = await receive(seller_ws), await receive(buyer_ws)
    assert (seller_hello["type"], seller_hello["address"]) == ("authenticated", seller.address)
    assert (buyer_hello["type"], buyer_hello["address"]) == ("authenticated", buyer.address)

    market_ws = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    snapshot = await receive(market_ws)
    assert snapshot == {
        "type": "snapshot", "reason": "connect", "market": SYMBOL, "seq": 0, "event_seq": 0,
        "bids": [], "asks": [], "checksum": 0,
    }  # fmt: skip

    ask = await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="1", price="2000.01")
    bid = await sync_to_async(buyer.place_order)(SYMBOL, "buy", quantity="0.123", price="2000.5")
    assert await sync_to_async(drain)(worker) == 2

    # The market socket: the ask rests, trades, and its level shrinks; accepted events (1, 3)
    # are private, so event_seq increases without being contiguous.
    # Each frame names the frame it follows and the checksum of the book once applied.
    level, trade, shrunk = await receive_many(market_ws, 3)
    rested, after = crc32(f"{PRICE}{WETH}".encode()), crc32(f"{PRICE}{WETH - QUANTITY}".encode())
    assert level == {"type": "level", "event_seq": 2, "seq": 1, "side": "sell",
                     "price": PRICE, "quantity": WETH, "prev_event_seq": 0,
                     "checksum": rested}  # fmt: skip
    assert trade == {"type": "trade", "event_seq": 4, "seq": 2, "trade_id": f"{SYMBOL}-2-1",
                     "price": PRICE, "quantity": QUANTITY, "taker_side": "buy",
                     "prev_event_seq": 2, "checksum": rested}  # fmt: skip
    assert shrunk == {"type": "level", "event_seq": 5, "seq": 2, "side": "sell",
                      "price": PRICE, "quantity": WETH - QUANTITY, "prev_event_seq": 4,
                      "checksum": after}  # fmt: skip

    # Each trader sees its hold (from the API), then its fill, its order and its two balances,
    # to the base unit.
    seller_frames = by_type(await receive_many(seller_ws, 5))
    buyer_frames = by_type(await receive_many(buyer_ws, 5))
    [seller_fill], [buyer_fill] = seller_frames["fill"], buyer_frames["fill"]
    assert seller_fill["trade_id"] == buyer_fill["trade_id"] == trade["trade_id"]
    assert (seller_fill["order_id"], seller_fill["liquidity"], seller_fill["fee"]) == (
        ask["id"], "maker", MAKER_FEE,
    )  # fmt: skip
    assert (buyer_fill["order_id"], buyer_fill["liquidity"], buyer_fill["fee"]) == (
        bid["id"], "taker", TAKER_FEE,
    )  # fmt: skip
    assert (seller_fill["price"], seller_fill["quantity"]) == (PRICE, QUANTITY)
    [seller_order], [buyer_order] = seller_frames["order"], buyer_frames["order"]
    assert (seller_order["status"], seller_order["remaining_quantity"]) == (
        "partially_filled", WETH - QUANTITY,
    )  # fmt: skip
    assert (buyer_order["status"], buyer_order["filled_quantity"]) == ("filled", QUANTITY)

    def balances(frames: dict) -> dict[str, dict[str, int]]:
        """The last balance frame of each asset."""
        return {b["asset"]: {"available": b["available"], "held": b["held"]}
                for b in frames["balance"]}  # fmt: skip

    assert seller_frames["balance"][0] == {
        "type": "balance", "asset": "WETH", "available": WETH, "held": WETH, "version": 2,
    }  # fmt: skip
    bid_hold = 246_184_531  # 0.123 at 2000.5 = 246.0615 USDC, plus 5 bps rounded up
    assert buyer_frames["balance"][0] == {
        "type": "balance", "asset": "USDC", "available": 1_000 * USDC - bid_hold,
        "held": bid_hold, "version": 2,
    }  # fmt: skip

    expected_seller = {
        "WETH": {"available": WETH, "held": WETH - QUANTITY},
        "USDC": {"available": NOTIONAL - MAKER_FEE, "held": 0},
    }
    # The buyer's hold (at its own price, with the higher fee) is released down to what it paid.
    expected_buyer = {
        "WETH": {"available": QUANTITY, "held": 0},
        "USDC": {"available": 1_000 * USDC - NOTIONAL - TAKER_FEE, "held": 0},
    }
    assert balances(seller_frames) == expected_seller
    assert balances(buyer_frames) == expected_buyer

    # The sockets told the truth: the ledger agrees, fees included, and balances.
    for address, expected in ((seller.address, expected_seller), (buyer.address, expected_buyer)):
        for symbol, amounts in expected.items():
            assert await sync_to_async(ledger_balance)(address, symbol) == amounts
    fees = await sync_to_async(ledger_balance)(SYSTEM_FEES, "USDC")
    assert fees == {"available": MAKER_FEE + TAKER_FEE, "held": 0}
    await sync_to_async(call_command)("ledger_check", stdout=open("/dev/null", "w"))  # noqa: SIM115

    # REST agrees with the socket's position.
    book = await sync_to_async(seller.request)("GET", f"markets/{SYMBOL}/book")
    assert book == {"market": SYMBOL, "seq": 2, "event_seq": shrunk["event_seq"], "bids": [],
                    "asks": [["2000.01", "0.877"]]}  # fmt: skip
    trades = await sync_to_async(seller.request)("GET", f"markets/{SYMBOL}/trades")
    [public] = trades["results"]
    assert (public["trade_id"], public["seq"], public["price"], public["quantity"]) == (
        trade["trade_id"], trade["seq"], "2000.01", "0.123",
    )  # fmt: skip
    assert public["taker_side"] == "buy"
