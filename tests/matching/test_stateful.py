"""The engine against the slow reference model over random command streams.

After every command: the events equal the reference's; the book is not crossed; each order's
quantity is conserved (filled + open + cancelled = original, replaces included); every fill price
respects the taker's limit and is the maker's own price; queues are in time priority; event
sequence numbers have no gaps; every event survives a JSON round trip. Now and then the engine
is replaced by one restored from a JSON snapshot of itself, which must carry on identically.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from exchange.matching import (
    CancelAll,
    CancelOrder,
    CancelReason,
    ExpireOrders,
    MarketSpec,
    MatchingEngine,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    event_from_dict,
)

from .support import ReferenceEngine

SPEC = MarketSpec(
    symbol="PROP",
    tick_size=1,
    lot_size=1,
    min_quantity=1,
    max_quantity=30,
    max_price=200,
    default_stp=SelfTradePrevention.CANCEL_MAKER,
)

ACCOUNTS = st.sampled_from([1, 2, 3, "x"])
SIDES = st.sampled_from([Side.BUY, Side.SELL])
PRICES = st.integers(min_value=95, max_value=105)
QUANTITIES = st.integers(min_value=1, max_value=12)
STPS = st.one_of(st.none(), st.sampled_from(list(SelfTradePrevention)))
TIFS = st.one_of(st.none(), st.sampled_from(list(TimeInForce)))
# Values the engine must reject, each with a code.
BAD_VALUES = st.sampled_from([0, -1, 1.5, "100", True, None, 10**6, 2**70, [1]])


class EngineMatchesReference(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine(SPEC)
        self.reference = ReferenceEngine(SPEC)
        self.seq = 0
        self.now = 1_000
        self.next_id = 0
        self.event_seq = 0
        # order id -> {"original", "filled", "cancelled"} from the events alone
        self.ledger: dict[Any, dict[str, int]] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def _stamp(self, advance: int) -> tuple[int, int]:
        self.seq += 1
        self.now += advance
        return self.seq, self.now

    def _known_ids(self) -> list[Any]:
        return [o.order_id for o in self.engine.open_orders()]

    def run(self, command: Any) -> None:
        before = {o.order_id: o for o in self.engine.open_orders()}
        events = self.engine.submit(command)
        ref_expired, ref_events, ref_levels = self.reference.submit(command)

        for event in events:
            assert event.seq == command.seq
            assert event.market == SPEC.symbol
            self.event_seq += 1
            assert event.event_seq == self.event_seq, "event_seq must have no gaps"
            data = event.to_dict()
            text = json.dumps(data, sort_keys=True)
            assert all(not isinstance(v, float) for v in data.values())
            assert event_from_dict(json.loads(text)) == event

        # Split: [expired cancels][their levels][command events][command levels]
        i = 0
        while (
            i < len(events)
            and events[i].type == "cancelled"
            and events[i].reason is CancelReason.EXPIRED
        ):
            i += 1
        j = i
        if i:
            while j < len(events) and events[j].type == "level":
                j += 1
        expired, expired_levels, rest = events[:i], events[i:j], events[j:]
        k = len(rest)
        while k and rest[k - 1].type == "level":
            k -= 1
        body, body_levels = rest[:k], rest[k:]
        assert all(e.type != "level" for e in body), "level events come last"

        def strip(items: list[Any]) -> list[dict[str, Any]]:
            out = []
            for e in items:
                d = e.to_dict()
                del d["event_seq"]
                out.append(d)
            return out

        def levels(items: list[Any]) -> dict[tuple[str, int], int]:
            keys = [(e.side.value, e.price) for e in items]
            assert len(keys) == len(set(keys)), "one level event per level per phase"
            return {(e.side.value, e.price): e.quantity for e in items}

        assert strip(expired) == ref_expired
        assert levels(expired_levels) == ref_levels[0]
        assert strip(body) == ref_events
        assert levels(body_levels) == ref_levels[1]

        self._account(command, events, before)

    def _account(self, command: Any, events: list[Any], before: dict[Any, Any]) -> None:
        """Ledger for conservation, and price checks on fills."""
        taker_limit = None
        taker_side = None
        last_price = None
        for e in events:
            if e.type == "accepted":
                self.ledger[e.order_id] = {"original": e.quantity, "filled": 0, "cancelled": 0}
                taker_limit = e.price  # a market order's protection price, or None
                taker_side = e.side
            elif e.type == "replaced":
                entry = self.ledger[e.order_id]
                entry["original"] += e.quantity - e.old_quantity
                taker_limit = e.price
                taker_side = e.side
            elif e.type == "fill":
                self.ledger[e.maker_order_id]["filled"] += e.quantity
                self.ledger[e.taker_order_id]["filled"] += e.quantity
                assert e.taker_side is taker_side
                maker = before[e.maker_order_id]
                assert maker.side is not taker_side
                assert e.price == maker.price, "fills happen at the maker's price"
                if taker_limit is not None:
                    if taker_side is Side.BUY:
                        assert e.price <= taker_limit
                    else:
                        assert e.price >= taker_limit
                if last_price is not None:
                    # Price priority: a taker never gets a better price after a worse one.
                    if taker_side is Side.BUY:
                        assert e.price >= last_price
                    else:
                        assert e.price <= last_price
                last_price = e.price
            elif e.type == "cancelled":
                self.ledger[e.order_id]["cancelled"] += e.quantity

    # -- rules --------------------------------------------------------------------------------

    @rule(
        side=SIDES,
        price=PRICES,
        quantity=QUANTITIES,
        account=ACCOUNTS,
        tif=TIFS,
        stp=STPS,
        expiry=st.one_of(st.none(), st.integers(min_value=-1, max_value=8)),
        advance=st.integers(min_value=0, max_value=3),
        reuse=st.booleans(),
    )
    def place_limit(self, side, price, quantity, account, tif, stp, expiry, advance, reuse):
        ids = self._known_ids()
        if reuse and ids:
            order_id = ids[len(ids) // 2]  # a duplicate of an open order
        else:
            self.next_id += 1
            order_id = self.next_id
        seq, now = self._stamp(advance)
        self.run(
            PlaceOrder(
                seq=seq,
                timestamp=now,
                order_id=order_id,
                account=account,
                side=side,
                price=price,
                quantity=quantity,
                time_in_force=tif,
                stp=stp,
                expires_at=None if expiry is None else now + expiry,
            )
        )

    @rule(
        side=SIDES,
        quantity=QUANTITIES,
        account=ACCOUNTS,
        tif=st.sampled_from([None, TimeInForce.IOC, TimeInForce.FOK]),
        protection=st.one_of(st.none(), PRICES),
        stp=STPS,
        advance=st.integers(min_value=0, max_value=3),
    )
    def place_market(self, side, quantity, account, tif, protection, stp, advance):
        self.next_id += 1
        seq, now = self._stamp(advance)
        self.run(
            PlaceOrder(
                seq=seq,
                timestamp=now,
                order_id=self.next_id,
                account=account,
                side=side,
                quantity=quantity,
                price=protection,
                order_type=OrderType.MARKET,
                time_in_force=tif,
                stp=stp,
            )
        )

    @rule(
        field=st.sampled_from(
            ["price", "quantity", "side", "order_type", "time_in_force", "stp", "expires_at",
             "order_id", "account"]
        ),
        bad=BAD_VALUES,
        market=st.booleans(),
    )  # fmt: skip
    def place_invalid(self, field, bad, market):
        self.next_id += 1
        seq, now = self._stamp(1)
        fields: dict[str, Any] = {
            "seq": seq,
            "timestamp": now,
            "order_id": self.next_id,
            "account": 1,
            "side": Side.BUY,
            "price": None if market else 100,
            "quantity": 3,
            "order_type": OrderType.MARKET if market else OrderType.LIMIT,
        }
        fields[field] = bad
        if field == "time_in_force" and bad is None:
            fields[field] = TimeInForce.GTC if market else "gtc"
        self.run(PlaceOrder(**fields))

    @rule(
        pick=st.integers(min_value=0, max_value=50),
        wrong_account=st.booleans(),
        advance=st.integers(min_value=0, max_value=3),
    )
    def cancel(self, pick, wrong_account, advance):
        opens = self.engine.open_orders()
        if opens and pick < 45:
            order = opens[pick % len(opens)]
            order_id, account = order.order_id, order.account
            if wrong_account:
                account = "someone else"
        else:
            order_id, account = pick + 10_000, 1
        seq, now = self._stamp(advance)
        self.run(CancelOrder(seq=seq, timestamp=now, order_id=order_id, account=account))

    @rule(account=ACCOUNTS, side=st.one_of(st.none(), SIDES, st.just("buy")))
    def cancel_all(self, account, side):
        seq, now = self._stamp(1)
        self.run(CancelAll(seq=seq, timestamp=now, account=account, side=side))

    @precondition(lambda self: self.engine.open_orders())
    @rule(
        pick=st.integers(min_value=0, max_value=50),
        price=st.one_of(st.none(), PRICES, BAD_VALUES),
        quantity=st.one_of(st.none(), st.integers(min_value=1, max_value=15), BAD_VALUES),
        wrong_account=st.integers(min_value=0, max_value=9),
        advance=st.integers(min_value=0, max_value=3),
    )
    def replace(self, pick, price, quantity, wrong_account, advance):
        opens = self.engine.open_orders()
        order = opens[pick % len(opens)]
        account = "someone else" if wrong_account == 0 else order.account
        seq, now = self._stamp(advance)
        self.run(
            ReplaceOrder(
                seq=seq,
                timestamp=now,
                order_id=order.order_id,
                account=account,
                price=price,
                quantity=quantity,
            )
        )

    @rule(advance=st.integers(min_value=0, max_value=6))
    def expire(self, advance):
        seq, now = self._stamp(advance)
        self.run(ExpireOrders(seq=seq, timestamp=now))

    @rule()
    def snapshot_and_restore(self):
        data = json.loads(json.dumps(self.engine.snapshot(), sort_keys=True))
        restored = MatchingEngine.restore(data)
        assert restored.snapshot() == self.engine.snapshot()
        assert restored.depth(100) == self.engine.depth(100)
        self.engine = restored

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def book_is_not_crossed(self):
        bid, ask = self.engine.best_bid(), self.engine.best_ask()
        if bid is not None and ask is not None:
            assert bid[0] < ask[0]

    @invariant()
    def open_orders_match_reference(self):
        mine = [
            (o.priority, o.order_id, o.account, o.side.value, o.price, o.quantity, o.remaining)
            for o in self.engine.open_orders()
        ]
        assert mine == self.reference.open_orders()

    @invariant()
    def next_expiry_is_the_earliest_open_expiry(self):
        expiries = [o.expires_at for o in self.engine.open_orders() if o.expires_at is not None]
        assert self.engine.next_expiry() == (min(expiries) if expiries else None)

    @invariant()
    def quantity_is_conserved(self):
        open_now = {o.order_id: o.remaining for o in self.engine.open_orders()}
        for order_id, entry in self.ledger.items():
            assert (
                entry["filled"] + open_now.get(order_id, 0) + entry["cancelled"]
                == entry["original"]
            ), (order_id, entry, open_now.get(order_id))

    @invariant()
    def queues_are_linked_in_time_priority_and_totals_add_up(self):
        book = self.engine.book
        for levels in (book.bids, book.asks):
            for price, level in levels.items():
                forward = list(level)
                backward = []
                order = level.tail
                while order is not None:
                    backward.append(order)
                    order = order.prev
                assert forward == backward[::-1] and forward, "links agree, no empty level"
                assert [o.priority for o in forward] == sorted({o.priority for o in forward})
                assert all(o.remaining > 0 and o.price == price for o in forward)
                assert all(book.orders[o.order_id] is o for o in forward)
                assert level.total == sum(o.remaining for o in forward)
        assert sum(
            len(list(level)) for levels in (book.bids, book.asks) for level in levels.values()
        ) == len(book.orders)
        if book.bids:
            assert book.best_bid == book.bids.peekitem(-1)[0]
        if book.asks:
            assert book.best_ask == book.asks.peekitem(0)[0]


TestEngineMatchesReference = EngineMatchesReference.TestCase
TestEngineMatchesReference.settings = settings(
    max_examples=500,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
