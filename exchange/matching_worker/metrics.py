"""Prometheus metrics of the matching worker (served by the worker process itself)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS_APPLIED = Counter(
    "clearway_matching_commands_applied_total", "Commands applied and committed", ["market"]
)
FILLS = Counter("clearway_matching_fills_total", "Fills committed", ["market"])
BATCH_SIZE = Histogram(
    "clearway_matching_batch_commands",
    "Commands per committed batch",
    ["market"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
APPLY_LATENCY = Histogram(
    "clearway_matching_apply_latency_seconds",
    "From a command's acceptance by the API to the commit of its effects",
    ["market"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG = Gauge("clearway_matching_lag_commands", "Newest sequence minus applied sequence", ["market"])
OWNED = Gauge("clearway_matching_owned", "1 while this worker owns the market", ["market"])
REBUILDS = Counter(
    "clearway_matching_rebuilds_total", "Books rebuilt from the database", ["market"]
)
