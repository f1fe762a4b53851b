"""Channel-layer message types the consumers handle, and a publisher for settlement updates.

Group messages are ``{"type": <one of the types below>, "events": [event, ...]}``; Channels
dispatches a message type ``a.b`` to the consumer method ``a_b``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from exchange.matching_worker.publish import account_group
from exchange.realtime.bus import group_send
from exchange.trading.models import Trade

log = logging.getLogger(__name__)

MARKET_EVENTS = "market.events"  # to market.{symbol}, from the matching worker
USER_EVENTS = "user.events"  # to account.{id}, from the matching worker
SETTLEMENT_EVENTS = "settlement.events"  # to account.{id}, from the settlement workflow


def settlement_event(trade: Trade, **details: Any) -> dict[str, Any]:
    """One trade's settlement status as the user socket shows it; ``details`` (batch id,
    transaction hash, ...) must be JSON values (ints, strings)."""
    return {
        "type": "settlement",
        "trade_id": trade.trade_id,
        "market": trade.market.symbol,
        "status": trade.settlement_status,
        **details,
    }


def publish_settlement_status(trades: Iterable[Trade], **details: Any) -> None:
    """Tell the maker and the taker of each trade its current settlement status.

    Call it after the status change commits (``transaction.on_commit``). Best effort, like the
    worker's publishing: a client that missed it reads /api/v1/fills.
    """
    by_account: dict[int, list[dict[str, Any]]] = {}
    for trade in trades:
        event = settlement_event(trade, **details)
        for account_id in {trade.maker_account_id, trade.taker_account_id}:
            by_account.setdefault(account_id, []).append(event)
    if not by_account:
        return
    try:
        for account_id, events in by_account.items():
            group_send(account_group(account_id), {"type": SETTLEMENT_EVENTS, "events": events})
    except Exception:
        log.exception("publishing settlement status failed; clients will read it over REST")
