"""Prometheus metrics of stream publishing (served by whichever process publishes)."""

from __future__ import annotations

from prometheus_client import Counter

# stream: market, user, balance, settlement, withdrawal. reason: "dropped" (the worker's
# background publisher was too far behind and discarded its oldest batch) or "failed" (sending
# raised). Either way clients recover (market: gap -> snapshot; account: REST, newer versions).
MESSAGES_LOST = Counter(
    "clearway_realtime_messages_lost_total",
    "Stream messages (batches, for the matching worker) dropped or failed to publish",
    ["stream", "reason"],
)
