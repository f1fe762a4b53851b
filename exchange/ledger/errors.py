"""Ledger errors. Amounts in ``extra`` are base-unit integers as strings (JSON-safe, 78 digits)."""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict


class InsufficientFunds(ApplicationError):
    """A posting would take a trader's (or system:fees') bucket below zero. Nothing was applied."""

    code = "insufficient_funds"
    status_code = status.HTTP_409_CONFLICT


class InvalidEntry(ApplicationError):
    """A malformed posting (unknown kind, empty or zero line, unknown account or asset...)."""

    code = "ledger_invalid_entry"
    status_code = status.HTTP_400_BAD_REQUEST


class UnbalancedEntry(InvalidEntry):
    """The lines of an entry do not sum to zero for some asset."""

    code = "ledger_unbalanced"


class ReferenceConflict(Conflict):
    """(kind, reference) was already posted with different lines: a caller bug, never a retry."""

    code = "ledger_reference_conflict"
