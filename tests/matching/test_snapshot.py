"""Snapshots restore an identical book; replays are byte-identical."""

from __future__ import annotations

import json
import random

import pytest

from exchange.matching import (
    CancelAll,
    CancelOrder,
    ExpireOrders,
    MarketSpec,
    MatchingEngine,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

from .support import book_with

SPEC = MarketSpec(symbol="SNAP", tick_size=1, lot_size=1, max_quantity=50)


def random_commands(n: int, seed: int) -> list:
    """A varied command stream: every command type, TIF, STP mode, expiry and some rejects."""
    rng = random.Random(seed)
    commands = []
    ids: list[tuple[int, int]] = []  # (order id, its account)
    now = 0
    for seq in range(1, n + 1):
        now += rng.randint(0, 3)
        r = rng.random()
        account = rng.randint(1, 4)
        if ids:
            # Mostly the owner; now and then another account (rejected as unknown_order).
            target, owner = rng.choice(ids)
            if rng.random() < 0.9:
                account = owner
        if r < 0.2 and ids:
            commands.append(CancelOrder(seq=seq, timestamp=now, order_id=target, account=account))
        elif r < 0.3 and ids:
            commands.append(
                ReplaceOrder(
                    seq=seq,
                    timestamp=now,
                    order_id=target,
                    account=account,
                    price=rng.choice([None, rng.randint(95, 105)]),
                    quantity=rng.choice([None, rng.randint(1, 12)]),
                )
            )
        elif r < 0.33:
            commands.append(CancelAll(seq=seq, timestamp=now, account=account))
        elif r < 0.35:
            commands.append(ExpireOrders(seq=seq, timestamp=now))
        else:
            market = rng.random() < 0.1
            commands.append(
                PlaceOrder(
                    seq=seq,
                    timestamp=now,
                    order_id=seq,
                    account=account,
                    side=rng.choice([Side.BUY, Side.SELL]),
                    quantity=rng.randint(1, 12),
                    price=None if market else rng.randint(95, 105),
                    order_type=OrderType.MARKET if market else OrderType.LIMIT,
                    time_in_force=None if market else rng.choice([None, *TimeInForce]),
                    expires_at=rng.choice([None, None, now + rng.randint(0, 20)]),
                    stp=rng.choice([None, *SelfTradePrevention]),
                )
            )
            ids.append((seq, account))
    return commands


def serialise(events: list) -> bytes:
    return json.dumps([e.to_dict() for e in events], sort_keys=True).encode()


def run(engine: MatchingEngine, commands: list) -> list:
    out = []
    for command in commands:
        out.extend(engine.submit(command))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_from_empty_is_byte_identical(seed):
    commands = random_commands(3_000, seed)
    first = serialise(run(MatchingEngine(SPEC), commands))
    second = serialise(run(MatchingEngine(SPEC), commands))
    assert first == second
    kinds = {e["type"] for e in json.loads(first)}
    assert kinds == {"accepted", "rejected", "fill", "cancelled", "replaced", "level"}


@pytest.mark.parametrize(("seed", "cut"), [(4, 1), (5, 700), (6, 1_999), (7, 2_999)])
def test_replay_from_a_snapshot_is_byte_identical(seed, cut):
    commands = random_commands(3_000, seed)
    whole = serialise(run(MatchingEngine(SPEC), commands))

    engine = MatchingEngine(SPEC)
    head = run(engine, commands[:cut])
    text = json.dumps(engine.snapshot(), sort_keys=True)
    restored = MatchingEngine.restore(json.loads(text))
    tail = run(restored, commands[cut:])
    assert serialise(head + tail) == whole


def test_restored_engine_is_identical():
    engine = MatchingEngine(SPEC)
    run(engine, random_commands(1_000, 8))
    restored = MatchingEngine.restore(json.loads(json.dumps(engine.snapshot())))
    assert restored.snapshot() == engine.snapshot()
    assert restored.depth(1_000) == engine.depth(1_000)
    assert restored.best_bid() == engine.best_bid()
    assert restored.best_ask() == engine.best_ask()
    assert restored.open_orders() == engine.open_orders()
    assert (restored.last_seq, restored.event_seq) == (engine.last_seq, engine.event_seq)


def test_snapshot_lists_orders_in_queueing_order():
    h = book_with(bids=[(100, [1, 2]), (101, [3])], asks=[(105, [4])])
    h.replace("B1", quantity=5, account="mB1")  # loses priority: now last
    orders = h.engine.snapshot()["orders"]
    assert [o["order_id"] for o in orders] == ["B2", "B3", "A1", "B1"]
    assert [o["priority"] for o in orders] == sorted(o["priority"] for o in orders)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.update(format=99),
        lambda d: d["orders"].append(dict(d["orders"][0])),  # duplicate id, stale priority
        lambda d: d["orders"][0].update(remaining=0),
        lambda d: d["orders"][0].update(price=1.5),
        lambda d: d["orders"][0].update(priority=10**9),  # beyond last_seq
        lambda d: d["orders"][1].update(side="sell", price=90),  # crosses the bid at 100
        lambda d: d["orders"][0].update(time_in_force="ioc"),
        lambda d: d.update(last_seq=-1),
    ],
)
def test_corrupt_snapshots_are_refused(corrupt):
    h = book_with(bids=[(100, [1, 2])])
    data = json.loads(json.dumps(h.engine.snapshot()))
    corrupt(data)
    with pytest.raises(ValueError):
        MatchingEngine.restore(data)
