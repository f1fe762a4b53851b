"""EIP-4361 (Sign-In with Ethereum) message checks that need no database.

The `siwe` package parses the message and verifies its signature and time window; the checks it
leaves to the relying party (URI, chain, issued-at) are done here, each mapped to its own error
code. The nonce is checked by the login service, against the database, after everything else.
Smart-contract wallets (EIP-1271) are not supported: that needs a chain call per login.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn
from urllib.parse import urlsplit

import siwe
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError as EthValidationError
from siwe.siwe import datetime_from_iso8601_string

from exchange.accounts import errors, signatures

MAX_MESSAGE_LENGTH = 4096
# Wallet clocks drift: an Issued At this far in the future is tolerated.
CLOCK_SKEW = timedelta(seconds=60)
NONCE_TTL = timedelta(minutes=5)
# A message issued long before its nonce could have been handed out is a replayed or forged one.
MAX_MESSAGE_AGE = NONCE_TTL + CLOCK_SKEW

_SIGNATURE = re.compile(r"^(?:0x)?([0-9a-fA-F]{130})$")


@dataclass(frozen=True, slots=True)
class Expected:
    """What a message must say to sign in here (from settings)."""

    domain: str
    uri: str
    chain_id: int


def parse(message: str) -> siwe.SiweMessage:
    if len(message) > MAX_MESSAGE_LENGTH:
        raise errors.SiweMalformed(f"The message is longer than {MAX_MESSAGE_LENGTH} characters.")
    try:
        # The reference ABNF parser takes time quadratic in malformed input (12 s of CPU for
        # 4,000 "0"s, on a public endpoint); siwe's regex parser refuses that in microseconds.
        # Only what it accepts reaches the reference grammar.
        siwe.SiweMessage.from_message(message, abnf=False)
        parsed = siwe.SiweMessage.from_message(message)
    except ValueError as exc:  # the ABNF parser and pydantic both raise ValueError subclasses
        raise errors.SiweMalformed(
            "The message is not an EIP-4361 sign-in message.", extra={"reason": str(exc)[:300]}
        ) from None
    # The signature is checked over the canonical serialisation; refusing any other spelling of
    # the same fields means what the wallet signed is exactly what was verified.
    if parsed.prepare_message() != message:
        raise errors.SiweMalformed("The message is not in canonical EIP-4361 form.")
    return parsed


def verify(message: str, signature: str, *, expected: Expected, now: datetime) -> siwe.SiweMessage:
    """Everything but the nonce. Returns the parsed message or raises a Siwe* error."""
    parsed = parse(message)
    match = _SIGNATURE.match(signature.strip())
    if match is None:
        raise errors.SiweBadSignature("The signature is not 65 hex-encoded bytes.")
    signature_hex = "0x" + match.group(1)
    # Before any other check: a rewritten (high-s) signature is refused the same way everywhere.
    signatures.ensure_canonical(signature_hex)

    expected_scheme = urlsplit(expected.uri).scheme
    if parsed.domain != expected.domain or parsed.scheme not in (None, expected_scheme):
        raise errors.SiweDomainMismatch(
            "The message is for another domain.",
            extra={"expected": expected.domain, "got": parsed.domain},
        )
    if parsed.uri.rstrip("/") != expected.uri.rstrip("/"):
        raise errors.SiweUriMismatch(
            "The message is for another URI.", extra={"expected": expected.uri, "got": parsed.uri}
        )
    if parsed.chain_id != expected.chain_id:
        raise errors.SiweChainMismatch(
            "The message is for another chain.",
            extra={"expected": expected.chain_id, "got": parsed.chain_id},
        )

    issued_at = datetime_from_iso8601_string(parsed.issued_at)
    if issued_at > now + CLOCK_SKEW:
        raise errors.SiweNotYetValid("The message's Issued At is in the future.")
    if issued_at < now - MAX_MESSAGE_AGE:
        raise errors.SiweExpired("The message was issued too long ago.")

    try:
        parsed.verify(signature_hex, domain=expected.domain, timestamp=now)
    except siwe.ExpiredMessage:
        raise errors.SiweExpired("The message's Expiration Time has passed.") from None
    except siwe.NotYetValidMessage:
        raise errors.SiweNotYetValid("The message's Not Before time has not come.") from None
    except siwe.DomainMismatch:
        raise errors.SiweDomainMismatch("The message is for another domain.") from None
    except (siwe.VerificationError, BadSignature, EthValidationError, ValueError):
        _raise_signature_error(message, signature_hex, parsed.address)
    return parsed


def _raise_signature_error(message: str, signature_hex: str, claimed: str) -> NoReturn:
    # Only on the failure path: tell a garbled signature from a valid one by another key.
    try:
        signer = signatures.recover_signer(encode_defunct(text=message), signature_hex)
    except (BadSignature, EthValidationError, ValueError):
        raise errors.SiweBadSignature("The signature cannot be recovered.") from None
    raise errors.SiweSignerMismatch(
        "The message was signed by another address.",
        extra={"address": claimed, "signer": signer},
    )
