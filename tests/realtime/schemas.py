"""Validation of stream messages and frames against exchange.realtime.messages (pydantic, strict,
no extra keys): the one definition producers and consumers share is also what tests check."""

from __future__ import annotations

from typing import Any

import typing_extensions
from pydantic import TypeAdapter

from exchange.realtime import messages

for _value in vars(messages).values():
    if typing_extensions.is_typeddict(_value):
        # A plain ConfigDict (a TypedDict itself): the messages module stays free of pydantic.
        _value.__pydantic_config__ = {"extra": "forbid", "strict": True}  # type: ignore[attr-defined]

GROUP_MESSAGE = TypeAdapter(messages.GroupMessage)
MARKET_FRAME = TypeAdapter(messages.MarketFrame)
USER_FRAME = TypeAdapter(messages.UserFrame)


def check(adapter: TypeAdapter, value: Any) -> None:
    """Raise pydantic's ValidationError unless ``value`` is exactly one of the types."""
    adapter.validate_python(value)
