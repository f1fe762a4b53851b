"""The matching engine: one market's book as a deterministic state machine.

``MatchingEngine.submit(command) -> list[Event]`` is the only way to change the book. It does no
I/O, reads no clock, calls nobody back and never raises for a trader's mistake: a bad command
gives an ``OrderRejected`` event and leaves the book untouched. It raises only for adapter bugs
(a sequence number that does not increase, a non-int timestamp, an unknown command class), and
then before changing anything.

The code is written for CPython speed: hot paths keep state in locals, build events with the
positional constructors from ``events.py``, and avoid properties and per-command dispatch tables.
"""

from __future__ import annotations

from heapq import heappop
from typing import Any

from exchange.matching.book import (
    Depth,
    Level,
    OpenOrder,
    OrderBook,
    RestingOrder,
    resting_order,
    view,
)
from exchange.matching.commands import (
    CancelAll,
    CancelOrder,
    Command,
    ExpireOrders,
    OrderId,
    PlaceOrder,
    ReplaceOrder,
)
from exchange.matching.enums import (
    CancelReason,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from exchange.matching.events import (
    Event,
    make_accepted,
    make_cancelled,
    make_fill,
    make_level,
    make_rejected,
    make_replaced,
)
from exchange.matching.market import MarketSpec, check_place, validate_replace

_BUY = Side.BUY
_SELL = Side.SELL
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_POST_ONLY = TimeInForce.POST_ONLY
_CANCEL_TAKER = SelfTradePrevention.CANCEL_TAKER
_CANCEL_MAKER = SelfTradePrevention.CANCEL_MAKER
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_DECREMENT = SelfTradePrevention.DECREMENT_AND_CANCEL
_USER = CancelReason.USER
_IOC_REMAINDER = CancelReason.IOC_REMAINDER
_MARKET_REMAINDER = CancelReason.MARKET_REMAINDER
_SELF_TRADE = CancelReason.SELF_TRADE
_EXPIRED = CancelReason.EXPIRED
_LIMIT = OrderType.LIMIT
_DUPLICATE = RejectReason.DUPLICATE_ORDER_ID
_POST_ONLY_WOULD_TAKE = RejectReason.POST_ONLY_WOULD_TAKE
_FOK_NOT_FILLED = RejectReason.FOK_NOT_FILLED
_UNKNOWN_ORDER = RejectReason.UNKNOWN_ORDER

# (side, price, level total before the command touched it); see _emit_levels.
_Touched = list[tuple[Side, int, int]]
# (level, its total before matching reached it); see _match.
_Visited = list[tuple[Level, int]]


class SequenceError(ValueError):
    """A command's ``seq`` is not an int greater than the last applied one (an adapter bug)."""


class CommandError(TypeError):
    """A command is not one of the command classes or has a non-int timestamp (an adapter bug)."""


class MatchingEngine:
    """Price-time priority matching for one market. See the package docstring for an example."""

    __slots__ = (
        "_default_stp",
        "_max_price",
        "_max_quantity",
        "_min_quantity",
        "book",
        "event_seq",
        "last_seq",
        "market",
        "spec",
    )

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.market = spec.symbol
        self.book = OrderBook(spec.max_price)
        self.last_seq = 0  # seq of the last applied command; the first must be >= 1
        self.event_seq = 0  # event_seq of the last emitted event
        # Copied out of the spec for the hot path.
        self._max_price = spec.max_price
        self._min_quantity = spec.min_quantity
        self._max_quantity = spec.max_quantity
        self._default_stp = spec.default_stp

    # -- commands ----------------------------------------------------------------------------

    def submit(self, command: Command) -> list[Event]:
        """Apply one command and return its events, in order.

        Placing a passive order and cancelling one are inlined here: together they are most of
        a real command stream, and a Python call costs as much as several of their steps.
        """
        kind = type(command)
        if (
            kind is not PlaceOrder
            and kind is not CancelOrder
            and kind is not ReplaceOrder
            and kind is not CancelAll
            and kind is not ExpireOrders
        ):
            raise CommandError(f"not a command: {command!r}")
        seq = command.seq
        if type(seq) is not int or seq <= self.last_seq:
            raise SequenceError(f"seq {seq!r} does not follow {self.last_seq}")
        timestamp = command.timestamp
        if type(timestamp) is not int:
            raise CommandError(f"timestamp {timestamp!r} is not an int")
        self.last_seq = seq
        events: list[Event] = []
        book = self.book
        expiries = book.expiries
        if expiries and expiries[0][0] <= timestamp:
            self._expire(timestamp, seq, events)

        if kind is PlaceOrder:
            order_id = command.order_id  # type: ignore[union-attr]
            account = command.account  # type: ignore[union-attr]
            side = command.side  # type: ignore[union-attr]
            order_type = command.order_type  # type: ignore[union-attr]
            price = command.price  # type: ignore[union-attr]
            quantity = command.quantity  # type: ignore[union-attr]
            tif = command.time_in_force  # type: ignore[union-attr]
            stp = command.stp  # type: ignore[union-attr]
            expires_at = command.expires_at  # type: ignore[union-attr]
            orders = book.orders
            if (
                order_type is _LIMIT
                and stp is None
                and expires_at is None
                and (tif is None or tif is _GTC)
                and type(price) is int
                and 0 < price <= self._max_price
                and type(quantity) is int
                and self._min_quantity <= quantity <= self._max_quantity
                and (type(order_id) is int or type(order_id) is str)
                and (type(account) is int or type(account) is str)
                and (
                    (side is _BUY and price < book.best_ask)
                    or (side is _SELL and price > book.best_bid)
                )
                and order_id not in orders
            ):
                # Most commands are this: a valid plain GTC limit order that does not cross.
                # It rests (OrderBook.insert, inlined) without the general path's flag work.
                stp = self._default_stp
                order = resting_order(
                    order_id, account, side, price, quantity, quantity, seq, None, stp, _GTC
                )
                levels = book.bids if side is _BUY else book.asks
                level = levels.get(price)
                if level is None:
                    level = levels[price] = Level(side, price)
                    if side is _BUY:
                        if price > book.best_bid:
                            book.best_bid = price
                    elif price < book.best_ask:
                        book.best_ask = price
                tail = level.tail  # Level.append, inlined
                order.prev = tail
                if tail is None:
                    level.head = order
                else:
                    tail.next = order
                level.tail = order
                total = level.total + quantity
                level.total = total
                orders[order_id] = order
                by_account = book.accounts.get(account)
                if by_account is None:
                    book.accounts[account] = {order_id: order}
                else:
                    by_account[order_id] = order
                market = self.market
                event_seq = self.event_seq
                events.append(
                    make_accepted(
                        market,
                        seq,
                        event_seq + 1,
                        order_id,
                        account,
                        side,
                        _LIMIT,
                        _GTC,
                        price,
                        quantity,
                        None,
                        stp,
                    )
                )
                event_seq += 2
                events.append(make_level(market, seq, event_seq, side, price, total))
                self.event_seq = event_seq
                return events
            # A quick sufficient test for the other valid limit orders; everything else gets
            # the full check, which also picks the reason code.
            if not (
                order_type is _LIMIT
                and (side is _BUY or side is _SELL)
                and type(price) is int
                and 0 < price <= self._max_price
                and type(quantity) is int
                and self._min_quantity <= quantity <= self._max_quantity
                and (tif is None or tif is _GTC or tif is _IOC or tif is _POST_ONLY or tif is _FOK)
                and stp is None
                and expires_at is None
                and (type(order_id) is int or type(order_id) is str)
                and (type(account) is int or type(account) is str)
            ):
                reason = check_place(
                    self.spec,
                    order_id,
                    account,
                    side,
                    order_type,
                    price,
                    quantity,
                    tif,
                    expires_at,
                    stp,
                    timestamp,
                )
                if reason is not None:
                    self._reject(seq, events, "place", order_id, account, reason)
                    return events
            if order_id in orders:
                self._reject(seq, events, "place", order_id, account, _DUPLICATE)
                return events
            is_market = order_type is _MARKET
            if tif is None:
                tif = _IOC if is_market else _GTC
            if stp is None:
                stp = self._default_stp
            is_buy = side is _BUY
            # A market order without a protection price may trade at any valid price.
            if is_buy:
                limit = self._max_price if price is None else price
                crosses = book.best_ask <= limit
            else:
                limit = 1 if price is None else price
                crosses = book.best_bid >= limit
            if tif is _POST_ONLY:
                if crosses:
                    self._reject(seq, events, "place", order_id, account, _POST_ONLY_WOULD_TAKE)
                    return events
            elif tif is _FOK and not (
                crosses and self._fok_fillable(is_buy, limit, quantity, account, stp)
            ):
                self._reject(seq, events, "place", order_id, account, _FOK_NOT_FILLED)
                return events
            market = self.market
            event_seq = self.event_seq + 1
            events.append(
                make_accepted(
                    market,
                    seq,
                    event_seq,
                    order_id,
                    account,
                    side,
                    order_type,
                    tif,
                    price,
                    quantity,
                    expires_at,
                    stp,
                )
            )
            if crosses:
                self.event_seq = event_seq
                self._take(
                    seq,
                    events,
                    order_id,
                    account,
                    side,
                    is_market,
                    tif,
                    price,
                    limit,
                    quantity,
                    expires_at,
                    stp,
                )
                return events
            if is_market or tif is _IOC or tif is _FOK:
                event_seq += 1
                events.append(
                    make_cancelled(
                        market,
                        seq,
                        event_seq,
                        order_id,
                        account,
                        side,
                        price,
                        quantity,
                        0,
                        _MARKET_REMAINDER if is_market else _IOC_REMAINDER,
                    )
                )
                self.event_seq = event_seq
                return events
            # A passive order with an expiry, an explicit mode or post-only joins the book.
            total = book.insert(
                resting_order(
                    order_id, account, side, price, quantity, quantity, seq, expires_at, stp, tif
                )
            )
            event_seq += 1
            events.append(make_level(market, seq, event_seq, side, price, total))
            self.event_seq = event_seq
            return events

        if kind is CancelOrder:
            order_id = command.order_id  # type: ignore[union-attr]
            account = command.account  # type: ignore[union-attr]
            order = (
                book.orders.get(order_id)
                if type(order_id) is int or type(order_id) is str
                else None
            )
            if order is None or order.account != account:
                self._reject(seq, events, "cancel", order_id, account, _UNKNOWN_ORDER)
                return events
            # OrderBook.remove and OrderBook.forget, inlined.
            side = order.side
            price = order.price
            remaining = order.remaining
            is_bid = side is _BUY
            level = (book.bids if is_bid else book.asks)[price]
            total = level.total - remaining
            level.total = total
            prev = order.prev  # Level.unlink, inlined
            nxt = order.next
            if prev is None:
                level.head = nxt
            else:
                prev.next = nxt
            if nxt is None:
                level.tail = prev
            else:
                nxt.prev = prev
            if level.head is None:
                book.drop_level(is_bid, price)
            del book.orders[order_id]
            by_account = book.accounts[account]
            del by_account[order_id]
            if not by_account:
                del book.accounts[account]
            market = self.market
            event_seq = self.event_seq + 1
            events.append(
                make_cancelled(
                    market, seq, event_seq, order_id, account, side, price, remaining, 0, _USER
                )
            )
            event_seq += 1
            events.append(make_level(market, seq, event_seq, side, price, total))
            self.event_seq = event_seq
            return events

        if kind is ReplaceOrder:
            self._replace(command, seq, events)  # type: ignore[arg-type]
        elif kind is CancelAll:
            self._cancel_all(command, seq, events)  # type: ignore[arg-type]
        return events

    def _reject(
        self,
        seq: int,
        events: list[Event],
        command: str,
        order_id: Any,
        account: Any,
        reason: RejectReason,
    ) -> None:
        # Echo ids only when they are valid: events carry ints, strs and None, nothing else.
        if type(order_id) is not int and type(order_id) is not str:
            order_id = None
        if type(account) is not int and type(account) is not str:
            account = None
        self.event_seq += 1
        events.append(
            make_rejected(self.market, seq, self.event_seq, command, order_id, account, reason)
        )

    def _take(
        self,
        seq: int,
        events: list[Event],
        order_id: OrderId,
        account: Any,
        side: Side,
        is_market: bool,
        tif: TimeInForce,
        price: int | None,
        limit: int,
        quantity: int,
        expires_at: int | None,
        stp: SelfTradePrevention,
    ) -> None:
        """An accepted order that crosses: match it, then rest or cancel what is left."""
        visited: _Visited = []
        remaining, decremented, stopped = self._match(
            seq, events, visited, order_id, account, side is _BUY, limit, quantity, stp, price
        )
        market = self.market
        rest_total = 0
        if remaining:
            if stopped or is_market or tif is _IOC or tif is _FOK:
                self.event_seq += 1
                events.append(
                    make_cancelled(
                        market,
                        seq,
                        self.event_seq,
                        order_id,
                        account,
                        side,
                        price,
                        remaining,
                        0,
                        _SELF_TRADE
                        if stopped
                        else _MARKET_REMAINDER
                        if is_market
                        else _IOC_REMAINDER,
                    )
                )
            else:
                rest_total = self.book.insert(
                    resting_order(
                        order_id,
                        account,
                        side,
                        price,  # type: ignore[arg-type]
                        quantity - decremented,
                        remaining,
                        seq,
                        expires_at,
                        stp,
                        tif,
                    )
                )
        # Level events: the maker levels in the order matched (each visited once), then the
        # taker's own level if it rested.
        event_seq = self.event_seq
        for level, before in visited:
            total = level.total  # 0 once the level is dropped
            if total != before:
                event_seq += 1
                events.append(make_level(market, seq, event_seq, level.side, level.price, total))
        if rest_total:
            event_seq += 1
            events.append(make_level(market, seq, event_seq, side, price, rest_total))
        self.event_seq = event_seq

    def _match(
        self,
        seq: int,
        events: list[Event],
        visited: _Visited,
        taker_id: OrderId,
        account: Any,
        is_buy: bool,
        limit: int,
        remaining: int,
        stp: SelfTradePrevention,
        taker_price: int | None,
    ) -> tuple[int, int, bool]:
        """Trade a taker against the opposite side up to ``limit``.

        Returns the taker's open quantity left, the quantity self-trade prevention decremented
        from it, and whether self-trade prevention stopped it (its remainder must be cancelled).
        Appends ``(level, total before)`` to ``visited`` for each level it reached.
        """
        book = self.book
        market = self.market
        if is_buy:
            levels = book.asks
            taker_side = _BUY
        else:
            levels = book.bids
            taker_side = _SELL
        by_id = book.orders
        accounts = book.accounts
        event_seq = self.event_seq
        index = 0
        trade_prefix = f"{market}-{seq}-"
        decremented = 0
        stopped = False
        while True:
            if is_buy:
                price = book.best_ask
                if price > limit:
                    break
            else:
                price = book.best_bid
                if price < limit:
                    break
            level = levels[price]
            visited.append((level, level.total))
            maker = level.head
            while maker is not None:
                maker_remaining = maker.remaining
                if maker.account == account:
                    # Self-trade prevention; the taker's mode decides.
                    if stp is _CANCEL_TAKER:
                        stopped = True
                        break
                    if stp is _DECREMENT and maker_remaining > remaining:
                        # Maker shrinks by the taker's size and keeps its place; taker is done.
                        maker.remaining = maker_remaining - remaining
                        maker.quantity -= remaining
                        level.total -= remaining
                        event_seq += 1
                        events.append(
                            make_cancelled(
                                market,
                                seq,
                                event_seq,
                                maker.order_id,
                                account,
                                maker.side,
                                price,
                                remaining,
                                maker.remaining,
                                _SELF_TRADE,
                            )
                        )
                        stopped = True
                        break
                    # Cancel the maker (cancel-maker, cancel-both, or decrement when it is the
                    # smaller order): it is the head, so unlinking it moves the head on.
                    nxt = maker.next
                    level.head = nxt
                    if nxt is None:
                        level.tail = None
                    else:
                        nxt.prev = None
                    level.total -= maker_remaining
                    book.forget(maker)
                    event_seq += 1
                    events.append(
                        make_cancelled(
                            market,
                            seq,
                            event_seq,
                            maker.order_id,
                            account,
                            maker.side,
                            price,
                            maker_remaining,
                            0,
                            _SELF_TRADE,
                        )
                    )
                    if stp is _CANCEL_BOTH:
                        stopped = True
                        break
                    if stp is _DECREMENT:
                        remaining -= maker_remaining
                        decremented += maker_remaining
                        event_seq += 1
                        events.append(
                            make_cancelled(
                                market,
                                seq,
                                event_seq,
                                taker_id,
                                account,
                                taker_side,
                                taker_price,
                                maker_remaining,
                                remaining,
                                _SELF_TRADE,
                            )
                        )
                        if not remaining:
                            break
                    maker = nxt
                    continue
                traded = remaining if remaining < maker_remaining else maker_remaining
                remaining -= traded
                maker_remaining -= traded
                maker.remaining = maker_remaining
                level.total -= traded
                index += 1
                event_seq += 1
                events.append(
                    make_fill(
                        market,
                        seq,
                        event_seq,
                        trade_prefix + str(index),
                        price,
                        traded,
                        taker_side,
                        maker.order_id,
                        maker.account,
                        maker_remaining,
                        taker_id,
                        account,
                        remaining,
                    )
                )
                if maker_remaining:
                    break  # the taker is filled; the maker keeps the rest and its place
                # Filled: unlink the head and drop it from the indexes (OrderBook.forget).
                nxt = maker.next
                level.head = nxt
                if nxt is None:
                    level.tail = None
                else:
                    nxt.prev = None
                maker_id = maker.order_id
                del by_id[maker_id]
                by_account = accounts[maker.account]
                del by_account[maker_id]
                if not by_account:
                    del accounts[maker.account]
                if not remaining:
                    break
                maker = nxt
            if level.head is None:
                book.drop_level(not is_buy, price)
            if stopped or not remaining:
                break
        self.event_seq = event_seq
        return remaining, decremented, stopped

    def _fok_fillable(
        self, is_buy: bool, limit: int, quantity: int, account: Any, stp: SelfTradePrevention
    ) -> bool:
        """Would a fill-or-kill order fill completely right now? A read-only dry run of
        ``_match``, self-trade prevention included."""
        book = self.book
        if is_buy:
            levels = book.asks
            prices = iter(levels.keys())
        else:
            levels = book.bids
            prices = reversed(levels.keys())
        needed = quantity
        for price in prices:
            if (price > limit) if is_buy else (price < limit):
                return False
            for maker in levels[price]:
                if maker.account == account:
                    if stp is _CANCEL_MAKER:
                        continue  # the maker would be cancelled and matching would go on
                    return False  # the taker would be stopped or decremented
                needed -= maker.remaining
                if needed <= 0:
                    return True
        return False

    def _cancel_all(self, cmd: CancelAll, seq: int, events: list[Event]) -> None:
        account = cmd.account
        side = cmd.side
        if type(account) is not int and type(account) is not str:
            self._reject(seq, events, "cancel_all", None, account, RejectReason.INVALID_ACCOUNT)
            return
        if side is not None and side is not _BUY and side is not _SELL:
            self._reject(seq, events, "cancel_all", None, account, RejectReason.INVALID_SIDE)
            return
        by_account = self.book.accounts.get(account)
        if not by_account:
            return
        orders = [o for o in by_account.values() if side is None or o.side is side]
        self._remove_orders(seq, events, orders, _USER)

    def _expire(self, timestamp: int, seq: int, events: list[Event]) -> None:
        book = self.book
        expiries = book.expiries
        orders = book.orders
        due = []
        while expiries and expiries[0][0] <= timestamp:
            _, priority, order_id = heappop(expiries)
            order = orders.get(order_id)
            # Skip entries of orders gone since, or re-queued by a replace (new priority).
            if order is not None and order.priority == priority:
                due.append(order)
        if due:
            self._remove_orders(seq, events, due, _EXPIRED)

    def _remove_orders(
        self, seq: int, events: list[Event], orders: list[RestingOrder], reason: CancelReason
    ) -> None:
        book = self.book
        market = self.market
        touched: _Touched = []
        event_seq = self.event_seq
        for order in orders:
            side = order.side
            price = order.price
            remaining = order.remaining
            touched.append((side, price, book.level_total(side, price)))
            book.remove(order)
            event_seq += 1
            events.append(
                make_cancelled(
                    market,
                    seq,
                    event_seq,
                    order.order_id,
                    order.account,
                    side,
                    price,
                    remaining,
                    0,
                    reason,
                )
            )
        self.event_seq = event_seq
        self._emit_levels(seq, events, touched)

    def _owned(self, order_id: Any, account: Any) -> RestingOrder | None:
        if type(order_id) is not int and type(order_id) is not str:
            return None
        order = self.book.orders.get(order_id)
        if order is None or order.account != account:
            return None
        return order

    def _replace(self, cmd: ReplaceOrder, seq: int, events: list[Event]) -> None:
        book = self.book
        order_id = cmd.order_id
        account = cmd.account
        order = self._owned(order_id, account)
        if order is None:
            self._reject(seq, events, "replace", order_id, account, _UNKNOWN_ORDER)
            return
        new_price = cmd.price
        new_quantity = cmd.quantity
        # Quick sufficient test for valid fields; validate_replace picks the reason otherwise.
        if not (
            (new_price is None or (type(new_price) is int and 0 < new_price <= self._max_price))
            and (
                new_quantity is None
                or (
                    type(new_quantity) is int
                    and self._min_quantity <= new_quantity <= self._max_quantity
                )
            )
            and (new_price is not None or new_quantity is not None)
        ):
            reason = validate_replace(self.spec, price=new_price, quantity=new_quantity)
            if reason is not None:
                self._reject(seq, events, "replace", order_id, account, reason)
                return
        old_price = order.price
        old_quantity = order.quantity
        old_remaining = order.remaining
        price = old_price if new_price is None else new_price
        quantity = old_quantity if new_quantity is None else new_quantity
        filled = old_quantity - old_remaining
        if quantity <= filled:
            self._reject(
                seq, events, "replace", order_id, account, RejectReason.QUANTITY_NOT_ABOVE_FILLED
            )
            return
        remaining = quantity - filled
        side = order.side
        is_buy = side is _BUY
        market = self.market
        if price == old_price and remaining <= old_remaining:
            # Amend down in place: time priority is kept.
            level = (book.bids if is_buy else book.asks)[price]
            order.quantity = quantity
            order.remaining = remaining
            level.total -= old_remaining - remaining
            self.event_seq += 1
            events.append(
                make_replaced(
                    market,
                    seq,
                    self.event_seq,
                    order_id,
                    account,
                    side,
                    old_price,
                    old_quantity,
                    price,
                    quantity,
                    remaining,
                    True,
                )
            )
            if remaining != old_remaining:
                self.event_seq += 1
                events.append(make_level(market, seq, self.event_seq, side, price, level.total))
            return
        crosses = price >= book.best_ask if is_buy else price <= book.best_bid
        if crosses and order.time_in_force is _POST_ONLY:
            self._reject(
                seq, events, "replace", order_id, account, RejectReason.POST_ONLY_WOULD_TAKE
            )
            return
        touched: _Touched = [(side, old_price, book.level_total(side, old_price))]
        book.remove(order)
        self.event_seq += 1
        events.append(
            make_replaced(
                market,
                seq,
                self.event_seq,
                order_id,
                account,
                side,
                old_price,
                old_quantity,
                price,
                quantity,
                remaining,
                False,
            )
        )
        decremented = 0
        stopped = False
        if crosses:
            visited: _Visited = []
            remaining, decremented, stopped = self._match(
                seq, events, visited, order_id, account, is_buy, price, remaining, order.stp, price
            )
            touched.extend((level.side, level.price, before) for level, before in visited)
        if remaining:
            if stopped:
                self.event_seq += 1
                events.append(
                    make_cancelled(
                        market,
                        seq,
                        self.event_seq,
                        order_id,
                        account,
                        side,
                        price,
                        remaining,
                        0,
                        _SELF_TRADE,
                    )
                )
            else:
                touched.append((side, price, book.level_total(side, price)))
                book.insert(
                    resting_order(
                        order_id,
                        account,
                        side,
                        price,
                        quantity - decremented,
                        remaining,
                        seq,
                        order.expires_at,
                        order.stp,
                        order.time_in_force,
                    )
                )
        self._emit_levels(seq, events, touched)

    def _emit_levels(self, seq: int, events: list[Event], touched: _Touched) -> None:
        """One ``level`` event per touched level whose total changed, in first-touch order.

        ``touched`` holds each level's total from before the command touched it; a level may
        appear more than once (a replace leaving and re-joining a price), the first entry wins.
        """
        book = self.book
        bids = book.bids
        asks = book.asks
        market = self.market
        event_seq = self.event_seq
        seen: set[tuple[Side, int]] | None = set() if len(touched) > 1 else None
        for side, price, before in touched:
            if seen is not None:
                key = (side, price)
                if key in seen:
                    continue
                seen.add(key)
            level = (bids if side is _BUY else asks).get(price)
            after = 0 if level is None else level.total
            if after != before:
                event_seq += 1
                events.append(make_level(market, seq, event_seq, side, price, after))
        self.event_seq = event_seq

    # -- reads -------------------------------------------------------------------------------

    def best_bid(self) -> tuple[int, int] | None:
        """``(price, total quantity)`` of the best bid, or None."""
        return self.book.best(_BUY)

    def best_ask(self) -> tuple[int, int] | None:
        """``(price, total quantity)`` of the best ask, or None."""
        return self.book.best(_SELL)

    def depth(self, levels: int = 10) -> Depth:
        """The top ``levels`` price levels per side, aggregated, best first."""
        return self.book.depth(levels)

    def next_expiry(self) -> int | None:
        """The earliest ``expires_at`` among open orders, or None: the timestamp at which an
        ``ExpireOrders`` command would have something to do. Stale schedule entries (orders
        gone or re-queued since) are dropped on the way, which changes no behaviour."""
        book = self.book
        expiries = book.expiries
        orders = book.orders
        while expiries:
            expires_at, priority, order_id = expiries[0]
            order = orders.get(order_id)
            if order is not None and order.priority == priority:
                return expires_at
            heappop(expiries)
        return None

    def get_order(self, order_id: OrderId) -> OpenOrder | None:
        order = self.book.orders.get(order_id)
        return None if order is None else view(order)

    def open_orders(self, account: Any = None) -> list[OpenOrder]:
        """Open orders (of one account, or all) in queueing order."""
        if account is None:
            return [view(order) for order in self.book.iter_orders()]
        return [view(order) for order in self.book.accounts.get(account, {}).values()]

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-compatible dict from which :meth:`restore` rebuilds an identical engine."""
        from exchange.matching.snapshot import take_snapshot

        return take_snapshot(self)

    @classmethod
    def restore(cls, data: dict[str, Any]) -> MatchingEngine:
        from exchange.matching.snapshot import restore_snapshot

        return restore_snapshot(data)
