"""Inputs and results of the chain watcher (plain data: no Django, no web3)."""

from __future__ import annotations

from dataclasses import dataclass, field

SCAN = "chain.scan"
WATCHER_WORKFLOW = "ChainWatcher"
WATCHER_ID = "chain-watcher"


@dataclass
class WatcherInput:
    poll_seconds: float = 1.0  # pause between scans once caught up with the head
    iterations_per_run: int = 300  # then continue-as-new
    # Reopened batches whose settlement workflow this watcher already started (their keys,
    # kept across continue-as-new).
    restarted: list[str] = field(default_factory=list)


@dataclass
class ScanInput:
    max_blocks: int | None = None  # None: CHAIN_SCAN_MAX_BLOCKS


@dataclass
class ReopenedBatch:
    batch_pk: int
    batch_id: int
    key: str  # tells one reopening of the batch from a later one
    workflow_id: str


@dataclass
class ScanOutput:
    from_block: int
    to_block: int
    head: int
    deposits_seen: int
    deposits_credited: int
    reorg: bool
    caught_up: bool
    # Confirmed batches a reorg took off the chain: each needs a new run of its settlement
    # workflow (the watcher starts it once per key).
    reopened: list[ReopenedBatch] = field(default_factory=list)
