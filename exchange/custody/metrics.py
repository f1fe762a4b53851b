"""Prometheus metrics of settlement, deposits and the chain RPC (default registry: /metrics in
the web process, the worker's own exporter in the Temporal worker)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_CIRCUIT_STATE = Gauge(
    "clearway_rpc_circuit_state",
    "Chain RPC circuit breaker: 0 closed, 1 open (calls refused), 2 half-open (one trial call).",
    ["endpoint"],
)
RPC_COOLDOWN = Gauge(
    "clearway_rpc_circuit_cooldown_seconds",
    "How long the breaker stayed open the last time it opened (grows while trials keep failing).",
    ["endpoint"],
)
RPC_FAILURES = Counter("clearway_rpc_failures_total", "Chain RPC transport failures.", ["endpoint"])
RPC_REJECTED = Counter(
    "clearway_rpc_rejected_total",
    "Calls the open (or half-open, busy) breaker refused at once; Temporal retries them.",
    ["endpoint"],
)
BATCHES = Counter("clearway_settlement_batches_total", "Settlement batches by outcome.", ["status"])
BATCH_FAILURES = Counter(
    "clearway_settlement_batch_failures_total",
    "Batches the contract rejected (their trades went back to matched): alert on any increase.",
)
TRADES_SETTLEMENT_FAILED = Counter(
    "clearway_settlement_trades_failed_total",
    "Trades given up on after repeated batch failures; they need an operator.",
)
SETTLEMENT_LATENCY = Histogram(
    "clearway_settlement_latency_seconds",
    "From trade creation to its batch reaching the confirmation depth.",
    buckets=(0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60, 120, 300),
)
DEPOSITS = Counter("clearway_deposits_total", "Vault deposits by event.", ["event"])
CHAIN_SCANNED_BLOCK = Gauge("clearway_chain_scanned_block", "Last block the chain watcher scanned.")
CHAIN_HEAD_LAG = Gauge("clearway_chain_head_lag_blocks", "Chain head minus the last scanned block.")
CHAIN_HEAD_BLOCK = Gauge("clearway_chain_head_block", "Chain head at the watcher's last scan.")
CHAIN_LAST_SCAN = Gauge(
    "clearway_chain_last_scan_timestamp_seconds",
    "Unix time the chain watcher last completed a scan: alert when it stops moving.",
)
CHAIN_DEEP_REORGS = Counter(
    "clearway_chain_deep_reorgs_total",
    "Reorgs that replaced blocks at or past the confirmation depth (blocks treated as final).",
)
CHAIN_REORGS = Counter("clearway_chain_reorgs_total", "Reorgs the chain watcher noticed.")
CHAIN_REORG_DEPTH = Histogram(
    "clearway_chain_reorg_depth_blocks",
    "Scanned blocks each reorg took off the chain (deeper than the confirmation depth: page).",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)
