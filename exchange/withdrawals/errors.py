"""Withdrawal errors, each with a stable code (the HTTP status says who can fix it):

- 400 ``amount_not_positive`` (any number not above zero: "0", "-5"), ``invalid_amount`` (not
  an exact decimal amount of the asset), ``invalid_destination``: a malformed request;
- 403 ``withdrawals_frozen``: an operator froze the account's withdrawals;
- 403 ``destination_not_allowlisted``, ``destination_cooling_off``: the account keeps an address
  allowlist and the destination is not on it, or was added too recently;
- 404 ``asset_not_found``, ``withdrawal_not_found``, ``withdrawal_address_not_found``;
- 409 ``insufficient_funds`` (from the ledger), ``idempotency_conflict``,
  ``withdrawal_not_cancellable``, ``asset_not_withdrawable``, ``withdrawal_address_exists``;
- 422 ``withdrawal_limit_24h``, ``withdrawal_limit_30d``: well formed, but the account's rolling
  limit would be exceeded; a smaller amount (or later) would pass.

Amounts in ``extra`` are decimal strings in the asset's own units, like every amount at the REST
edge, with ``asset`` naming it. The classes below ``PayoutError`` never reach the API: workflow
activities raise them and the workflow lists them as non-retryable by class name.
"""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict, Forbidden, NotFound, ValidationFailed


class AmountNotPositive(ValidationFailed):
    code = "amount_not_positive"


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"


class InvalidDestination(ValidationFailed):
    code = "invalid_destination"


class WithdrawalsFrozen(Forbidden):
    code = "withdrawals_frozen"


class DestinationNotAllowlisted(Forbidden):
    code = "destination_not_allowlisted"


class DestinationCoolingOff(Forbidden):
    code = "destination_cooling_off"


class AssetNotFound(NotFound):
    code = "asset_not_found"


class WithdrawalNotFound(NotFound):
    code = "withdrawal_not_found"


class WithdrawalAddressNotFound(NotFound):
    code = "withdrawal_address_not_found"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class WithdrawalNotCancellable(Conflict):
    code = "withdrawal_not_cancellable"


class AssetNotWithdrawable(Conflict):
    """The asset has no token on the settlement chain, so nothing could pay it out."""

    code = "asset_not_withdrawable"


class WithdrawalAddressExists(Conflict):
    code = "withdrawal_address_exists"


class WithdrawalLimitExceeded(ApplicationError):
    code = "withdrawal_limit"
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


class WithdrawalLimit24h(WithdrawalLimitExceeded):
    code = "withdrawal_limit_24h"


class WithdrawalLimit30d(WithdrawalLimitExceeded):
    code = "withdrawal_limit_30d"


# Codes of POST /withdrawals by status (insufficient_funds comes from the ledger).
REQUEST_ERRORS = {
    400: (
        "validation_error",
        "malformed_request",
        AmountNotPositive.code,
        InvalidAmount.code,
        InvalidDestination.code,
    ),
    403: (WithdrawalsFrozen.code, DestinationNotAllowlisted.code, DestinationCoolingOff.code),
    404: (AssetNotFound.code,),
    409: ("insufficient_funds", IdempotencyConflict.code, AssetNotWithdrawable.code),
    422: (WithdrawalLimit24h.code, WithdrawalLimit30d.code),
}


# ------------------------------------------------------------------ raised inside activities
class PayoutError(ApplicationError):
    """A payout that retrying cannot fix; the workflow fails the withdrawal (see workflows)."""

    code = "payout_error"
    status_code = status.HTTP_409_CONFLICT


class PayoutRejected(PayoutError):
    """The vault refused the payout for a reason about the payout itself (a revert)."""

    code = "payout_rejected"


class VaultBalanceShort(PayoutError):
    """The account's vault balance is below the amount: its latest trades may not be settled
    yet. The workflow retries for a while, then fails the withdrawal."""

    code = "vault_balance_short"


class PayoutPending(ApplicationError):
    """The vault says the withdrawal id is paid but its event is not visible yet (a node that
    lags, or a payout still pending while another attempt estimated against the pending
    block). Retryable: the next attempt finds the event."""

    code = "payout_pending"
    status_code = status.HTTP_409_CONFLICT


class WithdrawalNotPayable(PayoutError):
    """The withdrawal is in a state that is never paid (rejected, cancelled...)."""

    code = "withdrawal_not_payable"
