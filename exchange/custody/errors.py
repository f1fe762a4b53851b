"""Custody errors. Their class names are the Temporal error types the workflows branch on, so
renaming one is a change to the workflows' non_retryable_error_types too."""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict, NotFound


class CustodyError(Exception):
    """Base of the errors raised to activities."""


class ChainNotConfigured(CustodyError):
    """No vault address / operator to settle with."""


class RpcUnavailable(CustodyError):
    """The chain RPC failed or its circuit breaker is open: retryable."""


class SettlementRejected(CustodyError):
    """The contract refused the batch for what it contains (e.g. InsufficientBalance): retrying
    the same batch cannot succeed. Non-retryable: the batch fails and its trades are re-queued."""


class BatchAbandoned(CustodyError):
    """The batch already failed (or is unknown): nothing is left to do for it. Non-retryable."""


class ChainMoved(CustodyError):
    """The chain changed under a scan (a reorg between two reads): retryable."""


class AssetNotOnChain(CustodyError):
    """A trade's asset has no token address, so it cannot be settled."""


# REST edge
class TradeNotFound(NotFound):
    code = "trade_not_found"


class TradeNotBatched(Conflict):
    code = "trade_not_batched"
    status_code = status.HTTP_409_CONFLICT


class SettlementNotConfigured(ApplicationError):
    code = "chain_not_configured"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
