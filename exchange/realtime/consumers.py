"""Websocket consumers: the public market stream and the signed-in trader's account stream.

The protocol (frames, ops, close codes, resync) is documented in exchange/realtime/__init__.py
and docs/API.md; the messages in and out are the types of exchange.realtime.messages.
Channels delivers websocket frames and group messages to one consumer one at a time, so
everything a handler reads and writes (the stream position, the account) needs no locking; only
the heartbeat runs beside it, and it only reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from exchange.accounts.authentication import aauthenticate_token
from exchange.markets.models import Market
from exchange.realtime.messages import (
    MarketEvents,
    SettlementEvents,
    UserEvents,
    account_group,
    book_checksum,
    market_group,
)
from exchange.realtime.selectors import book_get, market_get

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def heartbeat_seconds() -> float:
    return float(getattr(settings, "REALTIME_HEARTBEAT_SECONDS", 5.0))


def auth_timeout_seconds() -> float:
    return float(getattr(settings, "REALTIME_AUTH_TIMEOUT_SECONDS", 10.0))


def parse_frame(text_data: str | None) -> dict[str, Any]:
    """A client frame as a JSON object, or {} for anything else (binary, not JSON, not an
    object, nested too deep for the parser): the caller answers those with an error frame."""
    if not text_data:
        return {}
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError):
        return {}
    return content if isinstance(content, dict) else {}


class StreamConsumer(AsyncJsonWebsocketConsumer):
    """Shared plumbing: ``{"op": ...}`` frames dispatched to ``op_<name>``, heartbeats, and
    refusing a connection with a 4xxx code and a reason."""

    ops: frozenset[str] = frozenset({"ping"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted = False
        self.closed = False
        self.tasks: list[asyncio.Task] = []

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def refuse(self, code: int, reason: str, message: str) -> None:
        """Close with ``code`` and ``reason`` (a stable error code), after an error frame that
        says why; the handshake is accepted first so the client sees both."""
        if self.closed:
            return
        if not self.accepted:
            await self.accept()
        await self.send_error(reason, message)
        self.closed = True
        await self.close(code=code, reason=reason)

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        # Group messages can still arrive between our close and the client's disconnect.
        if not self.closed:
            await super().send_json(content, close)

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    def start(self, coroutine: Any) -> None:
        self.tasks.append(asyncio.create_task(coroutine))

    async def heartbeats(self) -> None:
        interval = heartbeat_seconds()
        while not self.closed:
            await asyncio.sleep(interval)
            if not self.closed:
                await self.heartbeat()

    async def heartbeat(self) -> None:
        await self.send_json({"type": "heartbeat"})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        content = parse_frame(text_data)
        op = content.get("op")
        if not isinstance(op, str) or op not in self.ops:
            await self.send_error(
                "bad_request", f"Send a JSON object with an op: {sorted(self.ops)}."
            )
            return
        await getattr(self, f"op_{op}")(content)

    async def op_ping(self, content: dict[str, Any]) -> None:
        await self.send_json({"type": "pong"})

    async def disconnect(self, code: int) -> None:
        self.closed = True
        for task in self.tasks:
            task.cancel()
        for result in await asyncio.gather(*self.tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("%s task failed", type(self).__name__, exc_info=result)
        for group in self.subscriptions():
            await self.channel_layer.group_discard(group, self.channel_name)

    def subscriptions(self) -> list[str]:
        return []


class MarketConsumer(StreamConsumer):
    """``/ws/v1/markets/{symbol}``: depth snapshot, then level and trade events."""

    ops = frozenset({"ping", "resync"})

    market: Market | None = None
    event_seq = 0  # the stream is complete up to here
    last_sent = 0  # event_seq of the last snapshot, level or trade frame sent

    async def connect(self) -> None:
        symbol = self.scope["url_route"]["kwargs"]["symbol"]
        self.market = await database_sync_to_async(market_get)(symbol=symbol)
        if self.market is None:
            await self.refuse(CLOSE_NOT_FOUND, "market_not_found", f"No market {symbol!r}.")
            return
        # Subscribe first: events published while the snapshot is read wait in this channel
        # and are dropped or sent by market_events against the snapshot's event_seq.
        await self.channel_layer.group_add(market_group(self.market.symbol), self.channel_name)
        await self.accept()
        await self.send_snapshot("connect")
        self.start(self.heartbeats())

    def subscriptions(self) -> list[str]:
        return [market_group(self.market.symbol)] if self.market is not None else []

    async def send_snapshot(self, reason: str) -> None:
        assert self.market is not None
        book = await database_sync_to_async(book_get)(market=self.market)
        self.event_seq = self.last_sent = book["event_seq"]
        checksum = book_checksum(book["bids"], book["asks"])
        await self.send_json({"type": "snapshot", "reason": reason, **book, "checksum": checksum})

    async def op_resync(self, content: dict[str, Any]) -> None:
        await self.send_snapshot("requested")

    async def heartbeat(self) -> None:
        await self.send_json({"type": "heartbeat", "event_seq": self.event_seq})

    async def market_events(self, message: MarketEvents) -> None:
        """One committed batch of the matching worker: level and trade events."""
        # Batches chain (each starts where the last ended): a batch this consumer never
        # received shows up as a hole, and the book is resent instead of going wrong.
        start = message["prev_event_seq"]
        if start > self.event_seq:
            log.warning("%s: events after %s missed; resyncing", self.market, self.event_seq)
            await self.send_snapshot("gap")
            if start > self.event_seq:
                return  # the snapshot predates this batch: the next batch resyncs again
        for event in message["events"]:
            if event["event_seq"] > self.event_seq:
                # The client's own gap rule: each frame names the one it follows.
                await self.send_json({**event, "prev_event_seq": self.last_sent})
                self.event_seq = self.last_sent = event["event_seq"]
        self.event_seq = max(self.event_seq, message["event_seq"])


class UserConsumer(StreamConsumer):
    """``/ws/v1/user``: the authenticated account's orders, fills, balances and settlements."""

    ops = frozenset({"ping", "auth"})

    account_id: int | None = None
    expires_at = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # asset -> the newest balance version sent: balance events from several processes
        # (API, worker, workflows) can arrive out of order; an older one is never sent after.
        self.balance_versions: dict[str, int] = {}

    async def connect(self) -> None:
        token = self.handshake_token()
        if token is None:
            await self.accept()
            self.start(self.auth_deadline())
            return
        await self.authenticate(token)

    def handshake_token(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    return credentials.strip()
        tokens = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("token")
        return tokens[0] if tokens else None

    async def authenticate(self, token: str) -> None:
        try:
            account, auth_token = await aauthenticate_token(token)
        except AuthenticationFailed as error:
            await self.refuse(CLOSE_UNAUTHENTICATED, error.default_code, str(error.detail))
            return
        if self.closed:  # the auth deadline passed while the token was being checked
            return
        self.account_id, self.expires_at = account.pk, auth_token.expires_at
        await self.channel_layer.group_add(account_group(account.pk), self.channel_name)
        if not self.accepted:
            await self.accept()
        await self.send_json(
            {
                "type": "authenticated",
                "account_id": account.pk,
                "address": account.address,
                "expires_at": auth_token.expires_at.isoformat(),
            }
        )
        self.start(self.heartbeats())

    async def auth_deadline(self) -> None:
        await asyncio.sleep(auth_timeout_seconds())
        if self.account_id is None:
            await self.refuse(
                CLOSE_UNAUTHENTICATED, "auth_timeout", 'Send {"op": "auth", "token": ...} first.'
            )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.account_id is None:
            content = parse_frame(text_data)
            token = content.get("token")
            if content.get("op") != "auth" or not isinstance(token, str) or not token:
                await self.refuse(
                    CLOSE_UNAUTHENTICATED,
                    "not_authenticated",
                    'The first frame must be {"op": "auth", "token": ...}.',
                )
                return
            await self.authenticate(token)
            return
        await super().receive(text_data, bytes_data)

    async def op_auth(self, content: dict[str, Any]) -> None:
        await self.send_error("already_authenticated", "This socket is already signed in.")

    def subscriptions(self) -> list[str]:
        return [account_group(self.account_id)] if self.account_id is not None else []

    async def heartbeat(self) -> None:
        if self.expires_at is not None and timezone.now() >= self.expires_at:
            await self.refuse(
                CLOSE_UNAUTHENTICATED,
                "token_expired",
                "The bearer token has expired; sign in again.",
            )
            return
        await super().heartbeat()

    async def user_events(self, message: UserEvents) -> None:
        """This account's fills and orders (matching worker), balances (ledger) and
        withdrawals."""
        for event in message["events"]:
            if event["type"] == "balance":
                asset, version = event["asset"], event["version"]
                if version <= self.balance_versions.get(asset, -1):
                    continue
                self.balance_versions[asset] = version
            await self.send_json(dict(event))

    async def settlement_events(self, message: SettlementEvents) -> None:
        """Settlement status changes of this account's trades (exchange.realtime.events)."""
        for event in message["events"]:
            await self.send_json(dict(event))
