"""Withdrawal changes on the trader's websocket (/ws/v1/user).

Each committed change sends the account's group ``account.{id}`` a message
``{"type": "user.events", "events": [{"type": "withdrawal", ...}]}``; amounts are ints in base
units, like every websocket payload. Best effort: a client that missed one reads
GET /api/v1/withdrawals/{id}.
"""

from __future__ import annotations

from exchange.realtime.messages import WithdrawalEvent, account_group, user_events
from exchange.realtime.publishing import send
from exchange.withdrawals.models import Withdrawal


def withdrawal_event(withdrawal: Withdrawal) -> WithdrawalEvent:
    return {
        "type": "withdrawal",
        "id": str(withdrawal.id),
        "asset": withdrawal.asset.symbol,
        "amount": int(withdrawal.amount),
        "destination": withdrawal.destination,
        "state": withdrawal.state,
        "hold_status": withdrawal.hold_status,
        "tx_hash": withdrawal.tx_hash or None,
        "confirmations": int(withdrawal.confirmations),
        "updated_at": withdrawal.updated_at.isoformat() if withdrawal.updated_at else None,
    }


def publish_on_commit(withdrawal: Withdrawal) -> None:
    """Send the withdrawal as it is now once the current transaction commits (never if it
    rolls back). The event is built now, so later changes in the transaction do not leak in."""
    from django.db import transaction

    account_id, event = withdrawal.account_id, withdrawal_event(withdrawal)
    transaction.on_commit(lambda: publish(account_id, [event]))


def publish(account_id: int, events: list[WithdrawalEvent]) -> None:
    send("withdrawal", account_group(account_id), user_events(list(events)))
