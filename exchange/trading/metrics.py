"""Order intake metrics (gunicorn's /metrics): how many orders arrive, how fast they are
answered, and what became of them."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http.response import HttpResponseBase
from prometheus_client import Histogram

ORDER_INTAKE = Histogram(
    "clearway_order_intake_seconds",
    "Order placement requests from arrival to response, by outcome: accepted, replayed (an "
    "idempotent retry) or the error code; its _count is the intake rate.",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def outcome(response: HttpResponseBase) -> str:
    if response.status_code < 400:
        return "replayed" if response.get("Idempotent-Replayed") else "accepted"
    data = getattr(response, "data", None)
    # Every API error body carries a stable code (exchange.errors): a bounded label set.
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data["code"]
    return f"http_{response.status_code}"


def observe_intake(handle: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """Run one placement request (the view's whole dispatch, errors included) and record it."""
    started = time.perf_counter()
    result = "server_error"  # an exception escaping DRF becomes a 500
    try:
        response = handle()
        result = outcome(response)
        return response
    finally:
        ORDER_INTAKE.labels(result).observe(time.perf_counter() - started)
