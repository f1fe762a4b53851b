"""Test helpers for the matching engine: a harness with automatic sequence numbers, the
``book_with`` builder, and a slow, obviously-correct reference model of the engine's rules."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from exchange.matching import (
    CancelAll,
    CancelOrder,
    CancelReason,
    ExpireOrders,
    MarketSpec,
    MatchingEngine,
    OrderType,
    PlaceOrder,
    RejectReason,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    validate_order,
    validate_replace,
)

SPEC = MarketSpec(symbol="TEST", tick_size=100, lot_size=10, min_quantity=1, max_quantity=1_000)


class Harness:
    """An engine plus counters, so a test only says what it means."""

    def __init__(self, spec: MarketSpec = SPEC, engine: MatchingEngine | None = None) -> None:
        self.engine = engine or MatchingEngine(spec)
        self.seq = self.engine.last_seq
        self.now = 1_000

    def _next(self, advance: int = 1) -> tuple[int, int]:
        self.seq += 1
        self.now += advance
        return self.seq, self.now

    def submit(self, command: Any) -> list[Any]:
        return self.engine.submit(command)

    def place(
        self,
        order_id: Any,
        side: Side,
        quantity: Any,
        price: Any = None,
        *,
        account: Any = "acct",
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce | None = None,
        expires_at: Any = None,
        stp: SelfTradePrevention | None = None,
        advance: int = 1,
    ) -> list[Any]:
        seq, now = self._next(advance)
        return self.engine.submit(
            PlaceOrder(
                seq=seq,
                timestamp=now,
                order_id=order_id,
                account=account,
                side=side,
                quantity=quantity,
                price=price,
                order_type=order_type,
                time_in_force=tif,
                expires_at=expires_at,
                stp=stp,
            )
        )

    def buy(self, order_id: Any, quantity: Any, price: Any = None, **kw: Any) -> list[Any]:
        return self.place(order_id, Side.BUY, quantity, price, **kw)

    def sell(self, order_id: Any, quantity: Any, price: Any = None, **kw: Any) -> list[Any]:
        return self.place(order_id, Side.SELL, quantity, price, **kw)

    def cancel(self, order_id: Any, account: Any = "acct", advance: int = 1) -> list[Any]:
        seq, now = self._next(advance)
        return self.engine.submit(
            CancelOrder(seq=seq, timestamp=now, order_id=order_id, account=account)
        )

    def cancel_all(self, account: Any, side: Side | None = None, advance: int = 1) -> list[Any]:
        seq, now = self._next(advance)
        return self.engine.submit(CancelAll(seq=seq, timestamp=now, account=account, side=side))

    def replace(
        self,
        order_id: Any,
        *,
        price: Any = None,
        quantity: Any = None,
        account: Any = "acct",
        advance: int = 1,
    ) -> list[Any]:
        seq, now = self._next(advance)
        return self.engine.submit(
            ReplaceOrder(
                seq=seq,
                timestamp=now,
                order_id=order_id,
                account=account,
                price=price,
                quantity=quantity,
            )
        )

    def expire(self, advance: int = 1) -> list[Any]:
        seq, now = self._next(advance)
        return self.engine.submit(ExpireOrders(seq=seq, timestamp=now))

    # -- reads used by assertions --------------------------------------------------------------

    def depth(self, levels: int = 50) -> dict[str, list[list[int]]]:
        return self.engine.depth(levels).to_dict()

    def queue(self, side: Side, price: int) -> list[tuple[Any, int]]:
        """(order_id, remaining) of the open orders at a level, in time priority."""
        orders = [o for o in self.engine.open_orders() if o.side is side and o.price == price]
        return [(o.order_id, o.remaining) for o in sorted(orders, key=lambda o: o.priority)]


def book_with(
    bids: list[tuple[int, list[Any]]] = (),  # type: ignore[assignment]
    asks: list[tuple[int, list[Any]]] = (),  # type: ignore[assignment]
    spec: MarketSpec = SPEC,
) -> Harness:
    """A harness whose book holds the given levels.

    Each level is ``(price, [qty, ...])``; a quantity may be ``(qty, account)``. Orders are
    placed in the order given and named ``B1, B2, ...`` (bids) and ``A1, A2, ...`` (asks);
    by default each belongs to its own account ``mB1``, ``mA1``, ...
    """
    harness = Harness(spec)
    for prefix, side, levels in (("B", Side.BUY, bids), ("A", Side.SELL, asks)):
        n = 0
        for price, quantities in levels:
            for item in quantities:
                n += 1
                quantity, account = item if isinstance(item, tuple) else (item, f"m{prefix}{n}")
                events = harness.place(f"{prefix}{n}", side, quantity, price, account=account)
                assert events[0].type == "accepted", events
    return harness


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def dicts(events: list[Any]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events]


# ------------------------------------------------------------------------------------------------
# Reference model
# ------------------------------------------------------------------------------------------------


@dataclass
class RefOrder:
    order_id: Any
    account: Any
    side: Side
    price: int
    quantity: int
    remaining: int
    priority: int
    expires_at: int | None
    stp: SelfTradePrevention
    tif: TimeInForce


class ReferenceEngine:
    """The engine's rules, written for clarity rather than speed.

    The book is a plain list of open orders; the next maker is always found by scanning for the
    best price, then the lowest priority. A fill-or-kill order is tried on a copy of the state and
    kept only if it filled completely. Level changes are the difference between the aggregated
    book before and after each phase. Events are dicts like ``Event.to_dict()`` without
    ``event_seq`` (compared separately); level events come as one ``{(side, price): qty}`` dict per
    phase (expiry, then the command).
    """

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.market = spec.symbol
        self.orders: list[RefOrder] = []

    # -- helpers ------------------------------------------------------------------------------

    def _aggregate(self) -> dict[tuple[str, int], int]:
        totals: dict[tuple[str, int], int] = {}
        for o in self.orders:
            key = (o.side.value, o.price)
            totals[key] = totals.get(key, 0) + o.remaining
        return totals

    @staticmethod
    def _diff(before: dict, after: dict) -> dict[tuple[str, int], int]:
        changed = {}
        for key in set(before) | set(after):
            if before.get(key, 0) != after.get(key, 0):
                changed[key] = after.get(key, 0)
        return changed

    def _find(self, order_id: Any) -> RefOrder | None:
        for o in self.orders:
            if o.order_id == order_id and type(o.order_id) is type(order_id):
                return o
        return None

    def _ev(self, kind: str, seq: int, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "market": self.market, "seq": seq, **fields}

    def _cancelled(
        self, seq: int, o: RefOrder | None, qty: int, remaining: int, reason: CancelReason, **kw
    ) -> dict[str, Any]:
        if o is not None:
            kw = {"order_id": o.order_id, "account": o.account, "side": o.side, "price": o.price}
        return self._ev(
            "cancelled",
            seq,
            order_id=kw["order_id"],
            account=kw["account"],
            side=kw["side"].value,
            price=kw["price"],
            quantity=qty,
            remaining=remaining,
            reason=reason.value,
        )

    def _reject(self, seq: int, command: str, order_id: Any, account: Any, reason: RejectReason):
        if type(order_id) not in (int, str):
            order_id = None
        if type(account) not in (int, str):
            account = None
        return self._ev(
            "rejected",
            seq,
            command=command,
            order_id=order_id,
            account=account,
            reason=reason.value,
        )

    def _crosses(self, side: Side, limit: int, price: int) -> bool:
        return price <= limit if side is Side.BUY else price >= limit

    def _best_maker(self, taker_side: Side, limit: int) -> RefOrder | None:
        candidates = [
            o
            for o in self.orders
            if o.side is not taker_side and self._crosses(taker_side, limit, o.price)
        ]
        if not candidates:
            return None
        if taker_side is Side.BUY:
            return min(candidates, key=lambda o: (o.price, o.priority))
        return min(candidates, key=lambda o: (-o.price, o.priority))

    def _match(
        self,
        seq: int,
        out: list,
        taker_id: Any,
        account: Any,
        side: Side,
        limit: int,
        quantity: int,
        stp: SelfTradePrevention,
        taker_price: int | None,
    ) -> tuple[int, int, bool]:
        """Returns (remaining, decremented, stopped_by_stp)."""
        remaining = quantity
        decremented = 0
        fills = 0
        while remaining:
            maker = self._best_maker(side, limit)
            if maker is None:
                break
            if maker.account == account:
                if stp is SelfTradePrevention.CANCEL_TAKER:
                    return remaining, decremented, True
                if stp is SelfTradePrevention.DECREMENT_AND_CANCEL and maker.remaining > remaining:
                    maker.remaining -= remaining
                    maker.quantity -= remaining
                    out.append(
                        self._cancelled(
                            seq, maker, remaining, maker.remaining, CancelReason.SELF_TRADE
                        )
                    )
                    return remaining, decremented, True
                self.orders.remove(maker)
                out.append(self._cancelled(seq, maker, maker.remaining, 0, CancelReason.SELF_TRADE))
                if stp is SelfTradePrevention.CANCEL_BOTH:
                    return remaining, decremented, True
                if stp is SelfTradePrevention.DECREMENT_AND_CANCEL:
                    remaining -= maker.remaining
                    decremented += maker.remaining
                    out.append(
                        self._cancelled(
                            seq,
                            None,
                            maker.remaining,
                            remaining,
                            CancelReason.SELF_TRADE,
                            order_id=taker_id,
                            account=account,
                            side=side,
                            price=taker_price,
                        )
                    )
                continue
            traded = min(remaining, maker.remaining)
            remaining -= traded
            maker.remaining -= traded
            fills += 1
            out.append(
                self._ev(
                    "fill",
                    seq,
                    trade_id=f"{self.market}-{seq}-{fills}",
                    price=maker.price,
                    quantity=traded,
                    taker_side=side.value,
                    maker_order_id=maker.order_id,
                    maker_account=maker.account,
                    maker_remaining=maker.remaining,
                    taker_order_id=taker_id,
                    taker_account=account,
                    taker_remaining=remaining,
                )
            )
            if not maker.remaining:
                self.orders.remove(maker)
        return remaining, decremented, False

    # -- commands -----------------------------------------------------------------------------

    def submit(self, cmd: Any) -> tuple[list[dict], list[dict], dict]:
        """Returns (expiry events, command events, level changes per phase as a list)."""
        seq = cmd.seq
        expiry_events: list[dict] = []
        before = self._aggregate()
        due = sorted(
            (o for o in self.orders if o.expires_at is not None and o.expires_at <= cmd.timestamp),
            key=lambda o: (o.expires_at, o.priority),
        )
        for o in due:
            self.orders.remove(o)
            expiry_events.append(self._cancelled(seq, o, o.remaining, 0, CancelReason.EXPIRED))
        middle = self._aggregate()
        out: list[dict] = []
        if isinstance(cmd, PlaceOrder):
            self._place(cmd, out)
        elif isinstance(cmd, CancelOrder):
            o = self._find(cmd.order_id)
            if o is None or o.account != cmd.account:
                out.append(
                    self._reject(
                        seq, "cancel", cmd.order_id, cmd.account, RejectReason.UNKNOWN_ORDER
                    )
                )
            else:
                self.orders.remove(o)
                out.append(self._cancelled(seq, o, o.remaining, 0, CancelReason.USER))
        elif isinstance(cmd, CancelAll):
            if type(cmd.account) not in (int, str):
                out.append(
                    self._reject(seq, "cancel_all", None, cmd.account, RejectReason.INVALID_ACCOUNT)
                )
            elif cmd.side is not None and cmd.side is not Side.BUY and cmd.side is not Side.SELL:
                out.append(
                    self._reject(seq, "cancel_all", None, cmd.account, RejectReason.INVALID_SIDE)
                )
            else:
                mine = sorted(
                    (
                        o
                        for o in self.orders
                        if o.account == cmd.account and (cmd.side is None or o.side is cmd.side)
                    ),
                    key=lambda o: o.priority,
                )
                for o in mine:
                    self.orders.remove(o)
                    out.append(self._cancelled(seq, o, o.remaining, 0, CancelReason.USER))
        elif isinstance(cmd, ReplaceOrder):
            self._replace(cmd, out)
        else:
            assert isinstance(cmd, ExpireOrders)
        after = self._aggregate()
        return expiry_events, out, [self._diff(before, middle), self._diff(middle, after)]

    def _place(self, cmd: PlaceOrder, out: list) -> None:
        seq = cmd.seq
        reason = validate_order(
            self.spec,
            order_id=cmd.order_id,
            account=cmd.account,
            side=cmd.side,
            quantity=cmd.quantity,
            price=cmd.price,
            order_type=cmd.order_type,
            time_in_force=cmd.time_in_force,
            expires_at=cmd.expires_at,
            stp=cmd.stp,
            timestamp=cmd.timestamp,
        )
        if reason is None and self._find(cmd.order_id) is not None:
            reason = RejectReason.DUPLICATE_ORDER_ID
        if reason is not None:
            out.append(self._reject(seq, "place", cmd.order_id, cmd.account, reason))
            return
        market = cmd.order_type is OrderType.MARKET
        tif = cmd.time_in_force or (TimeInForce.IOC if market else TimeInForce.GTC)
        stp = cmd.stp or self.spec.default_stp
        side = cmd.side
        if cmd.price is not None:
            limit = cmd.price
        else:
            limit = self.spec.max_price if side is Side.BUY else 1
        crosses = self._best_maker(side, limit) is not None
        if tif is TimeInForce.POST_ONLY and crosses:
            out.append(
                self._reject(
                    seq, "place", cmd.order_id, cmd.account, RejectReason.POST_ONLY_WOULD_TAKE
                )
            )
            return
        if tif is TimeInForce.FOK:
            trial = copy.deepcopy(self.orders)
            left, decremented, _ = self._match(
                seq, [], cmd.order_id, cmd.account, side, limit, cmd.quantity, stp, cmd.price
            )
            self.orders = trial
            # All of it must trade: quantity removed by self-trade prevention is not a fill.
            if left or decremented:
                out.append(
                    self._reject(
                        seq, "place", cmd.order_id, cmd.account, RejectReason.FOK_NOT_FILLED
                    )
                )
                return
        out.append(
            self._ev(
                "accepted",
                seq,
                order_id=cmd.order_id,
                account=cmd.account,
                side=side.value,
                order_type=cmd.order_type.value,
                time_in_force=tif.value,
                price=cmd.price,
                quantity=cmd.quantity,
                expires_at=cmd.expires_at,
                stp=stp.value,
            )
        )
        remaining, decremented, stopped = self._match(
            seq, out, cmd.order_id, cmd.account, side, limit, cmd.quantity, stp, cmd.price
        )
        if not remaining:
            return
        if stopped or market or tif in (TimeInForce.IOC, TimeInForce.FOK):
            reason_ = (
                CancelReason.SELF_TRADE
                if stopped
                else CancelReason.MARKET_REMAINDER
                if market
                else CancelReason.IOC_REMAINDER
            )
            out.append(
                self._cancelled(
                    seq,
                    None,
                    remaining,
                    0,
                    reason_,
                    order_id=cmd.order_id,
                    account=cmd.account,
                    side=side,
                    price=cmd.price,
                )
            )
            return
        self.orders.append(
            RefOrder(
                cmd.order_id,
                cmd.account,
                side,
                cmd.price,
                cmd.quantity - decremented,
                remaining,
                seq,
                cmd.expires_at,
                stp,
                tif,
            )
        )

    def _replace(self, cmd: ReplaceOrder, out: list) -> None:
        seq = cmd.seq
        o = self._find(cmd.order_id)
        if o is None or o.account != cmd.account:
            out.append(
                self._reject(seq, "replace", cmd.order_id, cmd.account, RejectReason.UNKNOWN_ORDER)
            )
            return
        reason = validate_replace(self.spec, price=cmd.price, quantity=cmd.quantity)
        if reason is not None:
            out.append(self._reject(seq, "replace", cmd.order_id, cmd.account, reason))
            return
        price = o.price if cmd.price is None else cmd.price
        quantity = o.quantity if cmd.quantity is None else cmd.quantity
        filled = o.quantity - o.remaining
        if quantity <= filled:
            out.append(
                self._reject(
                    seq,
                    "replace",
                    cmd.order_id,
                    cmd.account,
                    RejectReason.QUANTITY_NOT_ABOVE_FILLED,
                )
            )
            return
        remaining = quantity - filled
        keeps = price == o.price and remaining <= o.remaining
        opposite = Side.SELL if o.side is Side.BUY else Side.BUY
        crosses = any(
            x.side is opposite and self._crosses(o.side, price, x.price) for x in self.orders
        )
        if not keeps and crosses and o.tif is TimeInForce.POST_ONLY:
            out.append(
                self._reject(
                    seq, "replace", cmd.order_id, cmd.account, RejectReason.POST_ONLY_WOULD_TAKE
                )
            )
            return
        event = self._ev(
            "replaced",
            seq,
            order_id=o.order_id,
            account=o.account,
            side=o.side.value,
            old_price=o.price,
            old_quantity=o.quantity,
            price=price,
            quantity=quantity,
            remaining=remaining,
            priority_kept=keeps,
        )
        out.append(event)
        if keeps:
            o.quantity = quantity
            o.remaining = remaining
            return
        self.orders.remove(o)
        left, decremented, stopped = self._match(
            seq, out, o.order_id, o.account, o.side, price, remaining, o.stp, price
        )
        if not left:
            return
        if stopped:
            out.append(
                self._cancelled(
                    seq,
                    None,
                    left,
                    0,
                    CancelReason.SELF_TRADE,
                    order_id=o.order_id,
                    account=o.account,
                    side=o.side,
                    price=price,
                )
            )
            return
        self.orders.append(
            RefOrder(
                o.order_id,
                o.account,
                o.side,
                price,
                quantity - decremented,
                left,
                seq,
                o.expires_at,
                o.stp,
                o.tif,
            )
        )

    def open_orders(self) -> list[tuple]:
        return sorted(
            (
                (o.priority, o.order_id, o.account, o.side.value, o.price, o.quantity, o.remaining)
                for o in self.orders
            ),
            key=lambda t: t[0],
        )
