"""Settling matched trades on the vault in batches: SettlementScheduler cuts batches and starts a
BatchSettlement child per batch, which submits it and waits for the confirmation depth."""
