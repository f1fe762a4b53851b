"""Inputs and results of the chain watcher (plain data: no Django, no web3)."""

from __future__ import annotations

from dataclasses import dataclass

SCAN = "chain.scan"
WATCHER_WORKFLOW = "ChainWatcher"
WATCHER_ID = "chain-watcher"


@dataclass
class WatcherInput:
    poll_seconds: float = 1.0  # pause between scans once caught up with the head
    iterations_per_run: int = 300  # then continue-as-new


@dataclass
class ScanInput:
    max_blocks: int | None = None  # None: CHAIN_SCAN_MAX_BLOCKS


@dataclass
class ScanOutput:
    from_block: int
    to_block: int
    head: int
    deposits_seen: int
    deposits_credited: int
    reorg: bool
    caught_up: bool
