"""What a batch of engine events means for the database: order states, trades, ledger entries.

Money moves at the maker's price. A buyer pays notional plus its fee out of its order's hold; a
seller delivers the base quantity out of its hold and receives the notional less its fee; both
fees go to system:fees. Whatever is left of a hold when an order is done goes back to available.
Fees are rounded up to the base unit, as the hold was, so a hold always covers its order (see
``_fill`` for the one rounding case where the hold decides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exchange.ledger.models import Bucket, JournalEntry
from exchange.ledger.services import Line, NewEntry
from exchange.markets.models import Market
from exchange.matching import (
    Fill,
    LevelChanged,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    Side,
)
from exchange.matching_worker.levels import BookLevels
from exchange.realtime.messages import MarketEvent
from exchange.trading.models import Order

_OPEN = Order.Status.OPEN.value
_PARTIALLY_FILLED = Order.Status.PARTIALLY_FILLED.value
_FILLED = Order.Status.FILLED.value
_CANCELLED = Order.Status.CANCELLED.value
_REJECTED = Order.Status.REJECTED.value
RESTING_STATUSES = frozenset({_OPEN, _PARTIALLY_FILLED})
_DONE = frozenset({_FILLED, _CANCELLED, _REJECTED})
_HELD = Bucket.HELD.value
_AVAILABLE = Bucket.AVAILABLE.value
_TRADE = JournalEntry.Kind.TRADE.value
_RELEASE = JournalEntry.Kind.RELEASE.value


def fee(notional: int, bps: int) -> int:
    return -(-notional * bps // 10_000)


def buy_hold(market: Market, price: int, quantity: int) -> int:
    """The hold a buy of ``quantity`` at ``price`` needs (same formula as order placement)."""
    notional = market.notional(price, quantity)
    return notional + fee(notional, max(market.maker_fee_bps, market.taker_fee_bps))


@dataclass(slots=True)
class NewTrade:
    """A Trade row to insert (columns of exchange.trading.models.Trade; ``created_us`` is its
    command's acceptance in microseconds since the epoch) and the fill's ``event_seq``."""

    trade_id: str
    sequence: int
    event_seq: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: int
    taker_account_id: int
    taker_side: str
    price: int
    quantity: int
    notional: int
    maker_fee: int
    taker_fee: int
    created_us: int


@dataclass
class BatchEffects:
    market: Market
    fees_account_id: int
    orders: dict[int, Any]  # id -> OrderRow: every order the batch touches, updated in place
    levels: BookLevels  # the stream's book, for each market event's checksum
    trades: list[NewTrade] = field(default_factory=list)
    entries: list[NewEntry] = field(default_factory=list)
    # Public events of the market's group (exchange.realtime.messages.MarketEvent). Accounts'
    # own events (fills, order states) are built from ``trades`` and the changed orders when
    # published, for accounts listening; their balances come from the ledger's posting.
    market_events: list[MarketEvent] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)

    # -------------------------------------------------------------------------------- events
    def apply(self, events: list, accepted_us: int) -> None:  # type: ignore[type-arg]
        lot = self.market.lot_size
        for event in events:
            kind = type(event)
            if kind is Fill:
                self._fill(event, accepted_us)
            elif kind is LevelChanged:
                side = event.side
                self.market_events.append(
                    {
                        "type": "level",
                        "event_seq": event.event_seq,
                        "seq": event.seq,
                        "side": side.value,
                        "price": event.price * self.market.tick_size,
                        "quantity": event.quantity * lot,
                        "checksum": self.levels.apply(
                            side is Side.BUY, event.price, event.quantity
                        ),
                    }
                )
            elif kind is OrderAccepted:
                order = self.orders[event.order_id]
                order.remaining_quantity = event.quantity * lot
                self.touched.add(order.pk)
            elif kind is OrderCancelled:
                self._cancel(event)
            elif (
                kind is OrderRejected and event.command == "place" and event.order_id in self.orders
            ):
                order = self.orders[event.order_id]
                order.status = _REJECTED
                order.reason = event.reason.value
                order.remaining_quantity = 0
                self.touched.add(order.pk)

    def _fill(self, event: Fill, accepted_us: int) -> None:
        market = self.market
        price = event.price * market.tick_size
        quantity = event.quantity * market.lot_size
        notional = market.notional(price, quantity)
        maker_fee, taker_fee = (
            fee(notional, market.maker_fee_bps),
            fee(notional, market.taker_fee_bps),
        )
        maker, taker = self.orders[event.maker_order_id], self.orders[event.taker_order_id]
        buyer, seller = (taker, maker) if event.taker_side is Side.BUY else (maker, taker)
        # The hold rounded the fee up once for the whole order; each fill rounds its own fee up,
        # so a buy filled in pieces at its limit price could need a base unit more per piece
        # than it holds. It pays what is left instead: the hold is the bound it agreed to.
        buyer_fee = taker_fee if buyer is taker else maker_fee
        buyer_fee = max(0, min(buyer_fee, buyer.hold_remaining - notional))
        if buyer is taker:
            taker_fee = buyer_fee
        else:
            maker_fee = buyer_fee
        seller_fee = taker_fee if seller is taker else maker_fee
        buyer.hold_remaining -= notional + buyer_fee
        seller.hold_remaining -= quantity
        if buyer.hold_remaining < 0 or seller.hold_remaining < 0:
            raise AssertionError(f"hold overdrawn by trade {event.trade_id}")
        lot = market.lot_size
        maker.filled_quantity += quantity
        maker.remaining_quantity = event.maker_remaining * lot
        taker.filled_quantity += quantity
        taker.remaining_quantity = event.taker_remaining * lot
        self.touched.add(maker.pk)
        self.touched.add(taker.pk)
        base, quote = market.base_id, market.quote_id
        lines = [
            Line(seller.account_id, base, -quantity, _HELD),
            Line(buyer.account_id, base, quantity, _AVAILABLE),
            Line(buyer.account_id, quote, -(notional + buyer_fee), _HELD),
            Line(seller.account_id, quote, notional - seller_fee, _AVAILABLE),
        ]
        if maker_fee + taker_fee:
            lines.append(Line(self.fees_account_id, quote, maker_fee + taker_fee, _AVAILABLE))
        self.entries.append(NewEntry(_TRADE, f"trade:{event.trade_id}", lines))
        taker_side = event.taker_side.value
        self.trades.append(
            NewTrade(
                event.trade_id,
                event.seq,
                event.event_seq,
                maker.pk,
                taker.pk,
                maker.account_id,
                taker.account_id,
                taker_side,
                price,
                quantity,
                notional,
                maker_fee,
                taker_fee,
                accepted_us,
            )
        )
        self.market_events.append(
            {
                "type": "trade",
                "event_seq": event.event_seq,
                "seq": event.seq,
                "trade_id": event.trade_id,
                "price": price,
                "quantity": quantity,
                "taker_side": taker_side,
                # A trade moves no level by itself (its level events follow).
                "checksum": self.levels.checksum,
            }
        )

    def _cancel(self, event: OrderCancelled) -> None:
        order = self.orders[event.order_id]
        order.remaining_quantity = event.remaining * self.market.lot_size
        if event.remaining == 0:
            order.reason = event.reason.value
        else:
            # Decrement-and-cancel took quantity off an order that stays open: release the
            # part of the hold that quantity needed. A taker can be decremented several times
            # by one command, so the event's own sequence names the release.
            removed = event.quantity * self.market.lot_size
            needed = (
                removed if order.side == Side.SELL else buy_hold(self.market, order.price, removed)
            )
            self._release(
                order,
                min(needed, order.hold_remaining),
                f"{order.pk}:{event.seq}:{event.event_seq}",
            )
        self.touched.add(order.pk)

    # ------------------------------------------------------------------------------- orders
    def _release(self, order: Any, amount: int, reference: str) -> None:
        if amount <= 0:
            return
        order.hold_remaining -= amount
        account, asset = order.account_id, order.hold_asset_id
        self.entries.append(
            NewEntry(
                _RELEASE,
                f"order-release:{reference}",
                [Line(account, asset, -amount, _HELD), Line(account, asset, amount, _AVAILABLE)],
            )
        )

    def finish(self) -> list[Any]:
        """Final status of every touched order; releases the holds of orders that are done."""
        changed = []
        for order_id in sorted(self.touched):
            order = self.orders[order_id]
            if order.status != _REJECTED:
                if order.remaining_quantity > 0:
                    order.status = _PARTIALLY_FILLED if order.filled_quantity > 0 else _OPEN
                elif order.filled_quantity == order.quantity:
                    order.status = _FILLED
                else:
                    order.status = _CANCELLED
            if order.status in _DONE:
                self._release(order, order.hold_remaining, str(order.pk))
            changed.append(order)
        return changed
