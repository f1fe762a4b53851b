"""Every message producers send across the process boundary matches its one definition in
exchange.realtime.messages (the autouse ``group_messages`` fixture checks each message any test
here sends; this test makes every producer send every kind), and the check has teeth."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from pydantic import ValidationError

from exchange.accounts.models import Account
from exchange.markets.models import Asset
from exchange.realtime import messages
from exchange.realtime.events import publish_settlement_status
from exchange.trading.models import Trade
from exchange.withdrawals import events as withdrawal_events
from exchange.withdrawals.models import Withdrawal
from tests.realtime.schemas import GROUP_MESSAGE, MARKET_FRAME, USER_FRAME, check
from tests.realtime.support import SYMBOL, receive
from tests.trading.support import drain

pytestmark = pytest.mark.django_db(transaction=True)

USDC = 10**6
WETH = 10**18


def settle_and_withdraw(address: str) -> None:
    trade = Trade.objects.select_related("market").get()
    trade.settlement_status = Trade.SettlementStatus.CONFIRMED
    publish_settlement_status([trade], batch_id=3, tx_hash="0x" + "ab" * 32, confirmations=2)
    account = Account.objects.get(address=address)
    withdrawal = Withdrawal(
        account=account, asset=Asset.objects.get(symbol="USDC"), amount=5 * USDC,
        destination="0x" + "12" * 20, state="approved", hold_status="held",
    )  # fmt: skip
    withdrawal_events.publish(account.pk, [withdrawal_events.withdrawal_event(withdrawal)])


async def test_every_producer_sends_only_defined_messages(
    trader, worker, sockets, group_messages
) -> None:
    seller = await sync_to_async(trader)(weth=WETH)
    buyer = await sync_to_async(trader)(usdc=3_000 * USDC)
    market_ws = await sockets.open(f"/ws/v1/markets/{SYMBOL}")
    buyer_ws = await sockets.open(
        "/ws/v1/user", headers=[(b"authorization", f"Bearer {buyer.token}".encode())]
    )
    await receive(market_ws)
    await receive(buyer_ws)
    await sync_to_async(seller.place_order)(SYMBOL, "sell", quantity="0.5", price="2000")
    await sync_to_async(buyer.place_order)(SYMBOL, "buy", quantity="0.2", price="2000")
    await sync_to_async(drain)(worker)
    await sync_to_async(settle_and_withdraw)(buyer.address)

    # The buyer's socket gets (and support.receive checks) each kind of account frame.
    kinds = set()
    while kinds != {"balance", "fill", "order", "settlement", "withdrawal"}:
        kinds.add((await receive(buyer_ws))["type"])
    # Each group message was checked as it was sent (the fixture); all kinds were sent.
    sent = {m["type"] for _, m in group_messages}
    assert sent == {messages.MARKET_EVENTS, messages.USER_EVENTS, messages.SETTLEMENT_EVENTS}
    events = {e["type"] for _, m in group_messages for e in m["events"]}
    assert events == {"level", "trade", "fill", "order", "balance", "settlement", "withdrawal"}


LEVEL = {"type": "level", "event_seq": 2, "seq": 1, "side": "sell", "price": 5, "quantity": 1,
         "checksum": 7}  # fmt: skip


@pytest.mark.parametrize(
    ("adapter", "value"),
    [
        (GROUP_MESSAGE, {"type": "market.events", "event_seq": 2, "events": [LEVEL]}),
        (GROUP_MESSAGE, messages.market_events(0, 2, [{**LEVEL, "extra": 1}])),  # type: ignore[list-item]
        (GROUP_MESSAGE, messages.market_events(0, 2, [{**LEVEL, "price": "5"}])),  # type: ignore[list-item]
        (GROUP_MESSAGE, messages.market_events(0, 2, [{**LEVEL, "side": "up"}])),  # type: ignore[list-item]
        (GROUP_MESSAGE, messages.user_events([{"type": "balance", "asset": "USDC"}])),  # type: ignore[list-item]
        (MARKET_FRAME, LEVEL),  # a frame without prev_event_seq
        (
            USER_FRAME,
            {"type": "balance", "asset": "USDC", "available": True, "held": 0, "version": 1},
        ),
    ],
)
def test_the_check_refuses_what_is_not_defined(adapter, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        check(adapter, value)
