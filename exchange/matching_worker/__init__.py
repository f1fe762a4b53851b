"""The matching worker: the only adapter between the pure engine and the database.

For each market it owns, it reads the sequenced command log after the last applied sequence,
applies a micro-batch of commands to the in-memory engine, and writes everything the batch
caused — order states, trades, ledger entries and the new applied sequence — in one transaction
guarded by a compare-and-set on the market's cursor. Events are published only after commit.
If anything fails the engine is rebuilt from the database, which is always the truth.
"""
