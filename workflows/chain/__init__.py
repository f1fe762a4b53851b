"""Watching the vault's chain: ChainWatcher scans new blocks for deposits and credits them once
they are deep enough."""
