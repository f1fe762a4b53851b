"""Sign-in and bearer-token errors, each with its own stable code.

SIWE rejections are ApplicationErrors (body ``{code, message, extra}``). Bearer-token failures are
DRF ``AuthenticationFailed`` subclasses so DRF keeps the 401 status and adds the
``WWW-Authenticate: Bearer`` challenge; exchange.errors uses their ``default_code`` as the code.
"""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed

from exchange.errors import ApplicationError, Unauthenticated


class SiweMalformed(ApplicationError):
    code = "siwe_malformed"
    status_code = status.HTTP_400_BAD_REQUEST


class SiweRejected(Unauthenticated):
    """A well-formed sign-in message that must not sign anyone in."""

    code = "siwe_rejected"


class SiweBadSignature(SiweRejected):
    code = "siwe_bad_signature"


class SiweSignerMismatch(SiweRejected):
    code = "siwe_signer_mismatch"


class SiweDomainMismatch(SiweRejected):
    code = "siwe_domain_mismatch"


class SiweUriMismatch(SiweRejected):
    code = "siwe_uri_mismatch"


class SiweChainMismatch(SiweRejected):
    code = "siwe_chain_mismatch"


class SiweNonceUnknown(SiweRejected):
    code = "siwe_nonce_unknown"


class SiweNonceReused(SiweRejected):
    code = "siwe_nonce_reused"


class SiweNonceExpired(SiweRejected):
    code = "siwe_nonce_expired"


class SiweExpired(SiweRejected):
    code = "siwe_expired"


class SiweNotYetValid(SiweRejected):
    code = "siwe_not_yet_valid"


class SignatureNotCanonical(ApplicationError):
    """A high-s signature (EIP-2): the same for orders, sign-in and any other signed request."""

    code = "signature_not_canonical"
    status_code = status.HTTP_400_BAD_REQUEST


SIWE_ERRORS: tuple[type[ApplicationError], ...] = (
    SiweMalformed,
    SiweBadSignature,
    SiweSignerMismatch,
    SiweDomainMismatch,
    SiweUriMismatch,
    SiweChainMismatch,
    SiweNonceUnknown,
    SiweNonceReused,
    SiweNonceExpired,
    SiweExpired,
    SiweNotYetValid,
    SignatureNotCanonical,
)


class TokenInvalid(AuthenticationFailed):
    default_code = "token_invalid"
    default_detail = "The bearer token is not valid."


class TokenExpired(AuthenticationFailed):
    default_code = "token_expired"
    default_detail = "The bearer token has expired; sign in again."


class TokenRevoked(AuthenticationFailed):
    default_code = "token_revoked"
    default_detail = "The bearer token was revoked; sign in again."


TOKEN_ERRORS: tuple[type[AuthenticationFailed], ...] = (TokenInvalid, TokenExpired, TokenRevoked)
