"""Withdrawal requests, limits, decisions and holds, through the services (no Temporal, no chain:
the workflow start and signals that follow a commit are recorded, not sent)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exchange.ledger.errors import InsufficientFunds
from exchange.withdrawals import errors, services
from exchange.withdrawals.models import (
    AccountWithdrawalLimits,
    AssetWithdrawalLimits,
    Withdrawal,
    WithdrawalTransition,
)
from exchange.withdrawals.services import WithdrawalRequest

from .support import USDC, balance, credit, ledger_entries, new_address, set_limits

pytestmark = pytest.mark.django_db

State = Withdrawal.State


def ask(account, amount: int, *, asset: str = "USDC", key: str | None = None, to: str = "",
        now=None) -> services.Requested:  # type: ignore[no-untyped-def]  # fmt: skip
    request = WithdrawalRequest(
        asset=asset,
        amount=amount,
        destination=to or new_address(),
        idempotency_key=key or f"k-{new_address()[2:14]}",
    )
    return services.withdrawal_request(account=account, request=request, now=now)


@pytest.fixture
def funded(trader, usdc):  # type: ignore[no-untyped-def]
    credit(trader, usdc, 1_000 * USDC)
    set_limits(usdc, auto_approve_threshold=100 * USDC)
    return trader


def test_a_small_withdrawal_is_approved_automatically_and_held(
    funded, usdc, django_capture_on_commit_callbacks, temporal_calls
):
    with django_capture_on_commit_callbacks(execute=True):
        withdrawal = ask(funded, 40 * USDC).withdrawal

    assert withdrawal.state == State.APPROVED
    assert withdrawal.auto_approved and withdrawal.approval_reasons == []
    assert withdrawal.approval_deadline is None
    assert withdrawal.hold_status == Withdrawal.HoldStatus.HELD
    assert balance(funded, usdc) == (960 * USDC, 40 * USDC)
    assert ledger_entries(withdrawal) == {"hold": 1}
    assert temporal_calls.started == [str(withdrawal.id)]  # after commit


def test_a_large_withdrawal_waits_for_approval_until_its_deadline(funded, usdc, settings):
    settings.WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS = 3600
    now = timezone.now()

    withdrawal = ask(funded, 101 * USDC, now=now).withdrawal

    assert withdrawal.state == State.PENDING_APPROVAL
    assert withdrawal.approval_reasons == ["above_threshold"]
    assert not withdrawal.auto_approved
    assert withdrawal.approval_deadline == now + timedelta(hours=1)
    assert balance(funded, usdc) == (899 * USDC, 101 * USDC)


def test_an_asset_without_limits_sends_every_withdrawal_to_approval(trader, weth):
    credit(trader, weth, 10)

    withdrawal = ask(trader, 1, asset="WETH").withdrawal

    assert withdrawal.state == State.PENDING_APPROVAL
    assert AssetWithdrawalLimits.objects.get(asset=weth).auto_approve_threshold == 0


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("0x1234", "20-byte"),
        ("not an address", "20-byte"),
        ("0x" + "0" * 40, "zero address"),
        ("0x52908400098527886E0F7030069857D2E4169EE7".replace("E", "e", 1), "checksum"),
    ],
)
def test_malformed_destinations_are_refused(funded, destination, message):
    with pytest.raises(errors.InvalidDestination, match=message):
        ask(funded, USDC, to=destination)
    assert not Withdrawal.objects.exists()


def test_lower_case_and_checksummed_destinations_are_accepted(funded):
    address = new_address()
    assert ask(funded, USDC, to=address.lower()).withdrawal.destination == address
    assert ask(funded, USDC, to=address).withdrawal.destination == address


def test_the_vault_itself_is_not_a_destination(funded, settings):
    settings.VAULT_ADDRESS = new_address()
    with pytest.raises(errors.InvalidDestination, match="vault"):
        ask(funded, USDC, to=settings.VAULT_ADDRESS.lower())


def test_request_errors_write_nothing(funded, usdc):
    with pytest.raises(errors.AmountNotPositive):
        ask(funded, 0)
    with pytest.raises(errors.AssetNotFound):
        ask(funded, 1, asset="NOPE")
    usdc.token_address = ""
    usdc.save()
    with pytest.raises(errors.AssetNotWithdrawable):
        ask(funded, 1)


def test_insufficient_funds_holds_nothing_and_trips_nothing(funded, usdc):
    set_limits(usdc, auto_approve_threshold=10_000 * USDC, exchange_cap_1h=10 * USDC)
    with pytest.raises(InsufficientFunds):
        ask(funded, 1_001 * USDC)
    assert not Withdrawal.objects.exists()
    assert AssetWithdrawalLimits.objects.get(asset=usdc).breaker_tripped_at is None
    assert balance(funded, usdc) == (1_000 * USDC, 0)


def test_frozen_accounts_cannot_withdraw(funded):
    funded.withdrawals_frozen = True
    funded.save()
    with pytest.raises(errors.WithdrawalsFrozen):
        ask(funded, USDC)


def test_a_retry_returns_the_first_withdrawal_and_another_body_conflicts(funded, usdc):
    to = new_address()
    first = ask(funded, 5 * USDC, key="abc", to=to)
    again = ask(funded, 5 * USDC, key="abc", to=to.lower())

    assert first.created and not again.created
    assert again.withdrawal.id == first.withdrawal.id
    with pytest.raises(errors.IdempotencyConflict):
        ask(funded, 6 * USDC, key="abc", to=to)
    assert balance(funded, usdc) == (995 * USDC, 5 * USDC)


# -------------------------------------------------------------------------------- limits
def test_24h_and_30d_limits(funded, usdc):
    set_limits(
        usdc,
        auto_approve_threshold=1_000 * USDC,
        account_limit_24h=150 * USDC,
        account_limit_30d=250 * USDC,
    )
    start = timezone.now()
    ask(funded, 100 * USDC, now=start)
    with pytest.raises(errors.WithdrawalLimit24h) as refused:
        ask(funded, 51 * USDC, now=start + timedelta(hours=23))
    assert refused.value.extra == {
        "asset": "USDC", "limit": "150", "used": "100", "requested": "51", "remaining": "50",
    }  # fmt: skip
    ask(funded, 50 * USDC, now=start + timedelta(hours=23))
    # A day after the first, it has left the 24-hour window but not the 30-day one.
    ask(funded, 100 * USDC, now=start + timedelta(hours=24, seconds=1))
    with pytest.raises(errors.WithdrawalLimit30d):
        ask(funded, 1 * USDC, now=start + timedelta(days=2))
    ask(funded, 100 * USDC, now=start + timedelta(days=30, seconds=1))


def test_withdrawals_that_never_leave_do_not_count(funded, usdc):
    set_limits(usdc, auto_approve_threshold=10 * USDC, account_limit_24h=100 * USDC)
    waiting = ask(funded, 100 * USDC).withdrawal
    with pytest.raises(errors.WithdrawalLimit24h):
        ask(funded, 1 * USDC)

    services.withdrawal_cancel(account=funded, withdrawal_id=waiting.id)

    assert ask(funded, 100 * USDC).withdrawal.state == State.PENDING_APPROVAL


def test_account_overrides_win_over_asset_limits(funded, usdc, make_trader):
    set_limits(usdc, auto_approve_threshold=10 * USDC, account_limit_24h=100 * USDC)
    AccountWithdrawalLimits.objects.create(
        account=funded, asset=usdc, auto_approve_threshold=500 * USDC, account_limit_24h=600 * USDC
    )
    other = make_trader()
    credit(other, usdc, 1_000 * USDC)

    assert ask(funded, 500 * USDC).withdrawal.state == State.APPROVED
    with pytest.raises(errors.WithdrawalLimit24h):
        ask(other, 101 * USDC)


def test_an_exchange_cap_trips_the_breaker_and_pauses_automatic_payouts(funded, usdc, make_trader):
    set_limits(usdc, auto_approve_threshold=100 * USDC, exchange_cap_1h=150 * USDC)
    other = make_trader()
    credit(other, usdc, 1_000 * USDC)
    start = timezone.now()

    assert ask(funded, 100 * USDC, now=start).withdrawal.state == State.APPROVED
    tripped = ask(other, 60 * USDC, now=start).withdrawal
    assert tripped.state == State.PENDING_APPROVAL
    assert tripped.approval_reasons == ["exchange_cap_1h"]
    limits = AssetWithdrawalLimits.objects.get(asset=usdc)
    assert limits.breaker_tripped_at == start
    # Tripped: even a withdrawal the cap has room for waits, until an operator resets it.
    paused = ask(other, 1 * USDC, now=start + timedelta(hours=2)).withdrawal
    assert paused.approval_reasons == ["circuit_breaker"]

    services.breaker_reset(asset=usdc, actor="admin:test")

    assert ask(other, 50 * USDC, now=start).withdrawal.state == State.APPROVED
    # Manual approvals and pending withdrawals are not automatic payouts: not in the cap.
    assert ask(other, 1 * USDC, now=start).withdrawal.approval_reasons == ["exchange_cap_1h"]


def test_the_daily_exchange_cap(funded, usdc):
    set_limits(usdc, auto_approve_threshold=100 * USDC, exchange_cap_24h=150 * USDC)
    start = timezone.now()
    ask(funded, 100 * USDC, now=start)
    assert ask(funded, 100 * USDC, now=start + timedelta(hours=5)).withdrawal.approval_reasons == [
        "exchange_cap_24h"
    ]


# ----------------------------------------------------------------------------- decisions
def test_the_first_decision_wins(funded):
    withdrawal = ask(funded, 500 * USDC).withdrawal

    approved = services.withdrawal_decide(
        withdrawal_id=withdrawal.id, decision="approve", actor="admin:ann"
    )
    late = services.withdrawal_decide(withdrawal_id=withdrawal.id, decision="expire", actor="timer")

    assert approved.changed and not late.changed
    assert late.withdrawal.state == State.APPROVED
    assert late.withdrawal.decided_by == "admin:ann"
    assert list(
        WithdrawalTransition.objects.filter(withdrawal=withdrawal).values_list(
            "from_state", "to_state", "actor"
        )
    ) == [("", "pending_approval", f"trader:{funded.address}"),
          ("pending_approval", "approved", "admin:ann")]  # fmt: skip


def test_admin_decisions_signal_the_workflow_after_commit(
    funded, temporal_calls, django_capture_on_commit_callbacks
):
    withdrawal = ask(funded, 500 * USDC).withdrawal
    with django_capture_on_commit_callbacks(execute=True):
        decided = services.withdrawal_reject(withdrawal_id=withdrawal.id, actor="admin:ann")
    assert decided.signalled == [True]
    # Again: still rejected, and the signal goes out again (a lost signal can be re-sent).
    with django_capture_on_commit_callbacks(execute=True):
        services.withdrawal_reject(withdrawal_id=withdrawal.id, actor="admin:ann")
    # Approving a rejected one changes nothing and signals nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.withdrawal_approve(withdrawal_id=withdrawal.id, actor="admin:bob")

    assert temporal_calls.signals == [(str(withdrawal.id), "reject", "admin:ann")] * 2


def test_a_trader_cancels_only_its_own_withdrawals_awaiting_approval(
    funded, make_trader, temporal_calls, django_capture_on_commit_callbacks
):
    waiting = ask(funded, 500 * USDC).withdrawal
    automatic = ask(funded, 5 * USDC).withdrawal

    with pytest.raises(errors.WithdrawalNotFound):
        services.withdrawal_cancel(account=make_trader(), withdrawal_id=waiting.id)
    with pytest.raises(errors.WithdrawalNotCancellable) as refused:
        services.withdrawal_cancel(account=funded, withdrawal_id=automatic.id)
    assert refused.value.extra == {"state": "approved"}
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = services.withdrawal_cancel(account=funded, withdrawal_id=waiting.id)

    assert cancelled.state == State.CANCELLED
    assert temporal_calls.signals == [(str(waiting.id), "cancel", f"trader:{funded.address}")]
    with pytest.raises(errors.WithdrawalNotCancellable):
        services.withdrawal_cancel(account=funded, withdrawal_id=waiting.id)


def test_a_hold_is_released_once_and_never_also_consumed(funded, usdc):
    withdrawal = ask(funded, 500 * USDC).withdrawal
    with pytest.raises(errors.WithdrawalNotPayable):
        services.withdrawal_release(withdrawal_id=withdrawal.id)  # still pending
    services.withdrawal_decide(withdrawal_id=withdrawal.id, decision="expire", actor="timer")

    services.withdrawal_release(withdrawal_id=withdrawal.id)
    services.withdrawal_release(withdrawal_id=withdrawal.id)

    assert balance(funded, usdc) == (1_000 * USDC, 0)
    assert ledger_entries(withdrawal) == {"hold": 1, "release": 1}
    with pytest.raises(errors.WithdrawalNotPayable):
        services.withdrawal_pay(withdrawal_id=withdrawal.id)
    with pytest.raises(errors.WithdrawalNotPayable):
        services.withdrawal_complete(withdrawal_id=withdrawal.id, confirmations=5)


def test_a_frozen_account_is_not_paid_even_once_approved(funded):
    withdrawal = ask(funded, 5 * USDC).withdrawal
    funded.withdrawals_frozen = True
    funded.save()

    with pytest.raises(errors.WithdrawalsFrozen):
        services.withdrawal_pay(withdrawal_id=withdrawal.id)
    assert Withdrawal.objects.get(pk=withdrawal.pk).state == State.APPROVED


# ----------------------------------------------------------------------------- allowlist
def test_an_allowlist_restricts_destinations_after_a_cooling_off_period(funded, settings):
    settings.WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS = 3600
    now = timezone.now()
    address = new_address()
    ask(funded, USDC, now=now)  # no allowlist yet: any destination

    entry = services.withdrawal_address_add(account=funded, address=address, now=now)

    with pytest.raises(errors.DestinationNotAllowlisted):
        ask(funded, USDC, now=now)
    with pytest.raises(errors.DestinationCoolingOff):
        ask(funded, USDC, to=address, now=now + timedelta(minutes=59))
    assert ask(funded, USDC, to=address, now=now + timedelta(hours=1)).created
    with pytest.raises(errors.WithdrawalAddressExists):
        services.withdrawal_address_add(account=funded, address=address.lower())

    # Emptying the allowlist does not switch it off.
    services.withdrawal_address_remove(account=funded, address_id=entry.pk)
    with pytest.raises(errors.DestinationNotAllowlisted):
        ask(funded, USDC, to=address, now=now + timedelta(hours=2))


def test_the_allowlist_can_be_required_for_everyone(funded, settings):
    settings.WITHDRAWAL_ALLOWLIST_REQUIRED = True
    with pytest.raises(errors.DestinationNotAllowlisted):
        ask(funded, USDC)
