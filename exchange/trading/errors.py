"""Order errors. Engine rejects keep the engine's reason code (exchange.matching.RejectReason)."""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict, Forbidden, NotFound


class OrderInvalid(ApplicationError):
    """A field the engine would reject; ``code`` is the engine's RejectReason value."""

    code = "order_invalid"
    status_code = status.HTTP_400_BAD_REQUEST


class MarketNotFound(NotFound):
    code = "market_not_found"


class MarketNotOpen(ApplicationError):
    code = "market_not_open"
    status_code = status.HTTP_409_CONFLICT


class ChainNotConfigured(ApplicationError):
    code = "chain_not_configured"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class SignatureInvalid(ApplicationError):
    code = "signature_invalid"
    status_code = status.HTTP_400_BAD_REQUEST


class SignerMismatch(Forbidden):
    """The signature is valid but recovers another address: another signer, or a message signed
    for another chain id or another verifying contract."""

    code = "signer_mismatch"


class NonceReused(Conflict):
    code = "nonce_reused"


class ClientOrderIdConflict(Conflict):
    code = "client_order_id_conflict"


class OrderExpired(ApplicationError):
    code = "order_expired"
    status_code = status.HTTP_400_BAD_REQUEST


class ExpiryTooFar(ApplicationError):
    code = "expiry_too_far"
    status_code = status.HTTP_400_BAD_REQUEST


class ProtectionPriceRequired(ApplicationError):
    code = "protection_price_required"
    status_code = status.HTTP_400_BAD_REQUEST


class OrderNotFound(NotFound):
    code = "order_not_found"


class OrderNotOpen(Conflict):
    code = "order_not_open"


class OrderNotReplaceable(Conflict):
    """Only resting (limit) orders can be amended."""

    code = "order_not_replaceable"
