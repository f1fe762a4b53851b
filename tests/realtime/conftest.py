from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer
from pydantic import ValidationError

from tests.realtime.schemas import GROUP_MESSAGE, check
from tests.realtime.support import depth_store, sockets, worker  # noqa: F401


@pytest.fixture(autouse=True)
def _isolated(channel_layer, depth_store) -> None:  # noqa: F811
    """Every websocket test runs on the real channels-redis layer under its own prefix."""


@pytest.fixture(autouse=True)
def group_messages(monkeypatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every group message any producer sends during a test, each checked against its type in
    exchange.realtime.messages; a test fails at teardown if one did not match. (Producers
    swallow publishing errors by design, so the check cannot just raise.)"""
    sent: list[tuple[str, dict[str, Any]]] = []
    invalid: list[str] = []
    original = RedisChannelLayer.group_send

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        sent.append((group, message))
        try:
            check(GROUP_MESSAGE, message)
        except ValidationError as error:
            invalid.append(f"{group}: {message}\n{error}")
        await original(self, group, message)

    monkeypatch.setattr(RedisChannelLayer, "group_send", group_send)
    yield sent
    assert not invalid, "\n\n".join(invalid)
