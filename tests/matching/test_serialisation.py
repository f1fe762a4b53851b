"""Events and commands as JSON-compatible dicts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from exchange.matching import (
    CancelAll,
    CancelOrder,
    ExpireOrders,
    OrderType,
    PlaceOrder,
    ReplaceOrder,
    SelfTradePrevention,
    Side,
    TimeInForce,
    command_from_dict,
    command_to_dict,
    event_from_dict,
)
from exchange.matching.events import EVENT_TYPES

from .support import book_with


def _every_event_type():
    h = book_with(bids=[(100, [5])], asks=[(102, [(3, "me")])])
    events = []
    events += h.buy("x", 1, 0)  # rejected
    events += h.sell("s", 2, 100, tif=TimeInForce.IOC)  # accepted, fill, level
    events += h.buy("m", 1, account="me", order_type=OrderType.MARKET)  # cancelled (stp)
    events += h.replace("B1", quantity=4, account="mB1")  # replaced (2 of 5 filled)
    return events


def test_every_event_type_round_trips_through_json():
    events = _every_event_type()
    assert {e.type for e in events} == set(EVENT_TYPES)
    for event in events:
        data = event.to_dict()
        assert data["type"] == event.type
        text = json.dumps(data, sort_keys=True)
        for value in data.values():
            assert value is None or type(value) in (int, str, bool)
        back = event_from_dict(json.loads(text))
        assert back == event
        assert type(back) is type(event)
        assert type(back).from_dict(data) == event


def test_events_are_frozen():
    event = _every_event_type()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "other"  # type: ignore[misc]


def test_engine_built_events_equal_normally_constructed_ones():
    for event in _every_event_type():
        cls = type(event)
        twin = cls(*(getattr(event, f.name) for f in dataclasses.fields(cls)))
        assert twin == event and hash(twin) == hash(event) and repr(twin) == repr(event)


@pytest.mark.parametrize(
    "command",
    [
        PlaceOrder(
            seq=1,
            timestamp=2,
            order_id="o",
            account=7,
            side=Side.SELL,
            quantity=3,
            price=10,
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.POST_ONLY,
            expires_at=99,
            stp=SelfTradePrevention.CANCEL_BOTH,
        ),
        PlaceOrder(
            seq=1,
            timestamp=2,
            order_id=5,
            account="a",
            side=Side.BUY,
            quantity=3,
            order_type=OrderType.MARKET,
        ),
        CancelOrder(seq=3, timestamp=4, order_id="o", account=7),
        CancelAll(seq=3, timestamp=4, account=7, side=Side.BUY),
        CancelAll(seq=3, timestamp=4, account=7),
        ReplaceOrder(seq=5, timestamp=6, order_id="o", account=7, quantity=2),
        ExpireOrders(seq=7, timestamp=8),
    ],
)
def test_commands_round_trip_through_json(command):
    data = json.loads(json.dumps(command_to_dict(command)))
    assert command_from_dict(data) == command
    assert command.to_dict() == data
    assert type(command).from_dict(data) == command


def test_a_command_with_an_unknown_enum_value_still_loads_and_is_rejected_by_the_engine():
    data = PlaceOrder(seq=1, timestamp=1, order_id="o", account=1, side=Side.BUY, quantity=1,
                      price=5).to_dict()  # fmt: skip
    data["side"] = "sideways"
    command = command_from_dict(data)
    assert command.side == "sideways"
    h = book_with()
    events = h.engine.submit(command)
    assert events[0].reason.value == "invalid_side"
