"""Best-effort publishing to a group from sync code after a commit: a failure is logged and
counted (clearway_realtime_messages_lost_total), never raised into the committed work."""

from __future__ import annotations

import logging

from exchange.realtime import bus, metrics
from exchange.realtime.messages import GroupMessage, UserEvent, account_group, user_events

log = logging.getLogger(__name__)


def send(stream: str, group: str, message: GroupMessage) -> bool:
    """Send ``message`` to ``group``; False (logged, counted) if it could not be sent."""
    try:
        bus.group_send(group, dict(message))
    except Exception:
        metrics.MESSAGES_LOST.labels(stream, "failed").inc()
        log.exception("publishing %s events to %s failed; clients recover over REST", stream, group)
        return False
    return True


def publish_user_events(stream: str, account_id: int, events: list[UserEvent]) -> None:
    send(stream, account_group(account_id), user_events(events))
