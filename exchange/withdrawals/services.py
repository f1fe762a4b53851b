"""Withdrawal writes: requests (limits and holds), decisions, and the payout steps the workflow
runs as activities.

Requests are race-free. ``withdrawal_request`` locks, in this order, the account row, the asset's
``AssetWithdrawalLimits`` row (the exchange-wide lock of that asset) and, through the ledger's
hold, the balance rows; it reads the clock only once it holds them. So two requests of one account
(or, for the caps, of one asset) run one after the other, each sums every withdrawal committed
before it, and creation order is lock order: for any 24-hour (30-day) window, the withdrawals in
it that count sum to at most the limit, because the last of them checked exactly that.

Decisions (approve, reject, cancel, expire) are first-writer-wins transitions out of
``pending_approval`` under the withdrawal's row lock. The admin and the trader record theirs
here, then signal the workflow after commit; the workflow's DECIDE activity records the one it
received (or the timer's expiry) through the same function, so whichever reached the database
first is what the workflow carries out.

Every state change is logged in WithdrawalTransition and published to the trader's websocket
after commit. Ledger references are ``withdrawal:<id>`` for the hold, its release and the payout:
each applies at most once, and ``hold_status`` (under the row lock) makes sure only one of
release and payout ever applies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from eth_utils import is_checksum_address, to_checksum_address

from exchange.accounts.models import Account
from exchange.chain import ContractRevert, PayoutConflict, TxResult, withdrawal_key
from exchange.ledger.services import hold, pay_withdrawal, release
from exchange.markets.models import Asset
from exchange.money import from_base_units
from exchange.withdrawals import events, selectors
from exchange.withdrawals.conf import setting
from exchange.withdrawals.errors import (
    AmountNotPositive,
    AssetNotFound,
    AssetNotWithdrawable,
    DestinationCoolingOff,
    DestinationNotAllowlisted,
    IdempotencyConflict,
    InvalidDestination,
    PayoutPending,
    PayoutRejected,
    VaultBalanceShort,
    WithdrawalAddressExists,
    WithdrawalAddressNotFound,
    WithdrawalLimit24h,
    WithdrawalLimit30d,
    WithdrawalNotCancellable,
    WithdrawalNotFound,
    WithdrawalNotPayable,
    WithdrawalsFrozen,
)
from exchange.withdrawals.models import (
    FINAL_STATES,
    RELEASING_STATES,
    AssetWithdrawalLimits,
    Withdrawal,
    WithdrawalAddress,
    WithdrawalTransition,
)

log = logging.getLogger(__name__)

State = Withdrawal.State
HoldStatus = Withdrawal.HoldStatus

WINDOW_1H = timedelta(hours=1)
WINDOW_24H = timedelta(hours=24)
WINDOW_30D = timedelta(days=30)

PAYABLE_STATES = (State.APPROVED, State.PAYING, State.SUBMITTED)
DECISION_TARGETS = {
    "approve": State.APPROVED,
    "reject": State.REJECTED,
    "cancel": State.CANCELLED,
    "expire": State.EXPIRED,
}
# Reverts about the payout itself: sending it again cannot succeed. InsufficientBalance is
# handled apart (the account's trades may not be settled yet); every other revert (EnforcedPause,
# a missing operator role...) is about the moment or the setup, and is retried.
REJECTING_REVERTS = frozenset({"ZeroAmount", "ZeroAddress", "TokenNotAllowed", "Panic"})

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def ledger_reference(withdrawal_id: object) -> str:
    return f"withdrawal:{withdrawal_id}"


# ------------------------------------------------------------------------------- requests
@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A withdrawal as asked for: the asset's symbol, base units, the destination address."""

    asset: str
    amount: int
    destination: str
    idempotency_key: str

    def fingerprint(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Requested:
    withdrawal: Withdrawal
    created: bool  # False: an identical earlier request; this is its withdrawal


def normalize_destination(value: str) -> str:
    """The EIP-55 form of a 0x address. A mixed-case address must carry a valid checksum (it
    catches typos); the zero address and the vault itself are refused."""
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise InvalidDestination("The destination is not a 0x-prefixed 20-byte address.")
    body = value[2:]
    if body not in (body.lower(), body.upper()) and not is_checksum_address(value):
        raise InvalidDestination("The destination's EIP-55 checksum is wrong (a typo?).")
    address = to_checksum_address(value)
    if int(address, 16) == 0:
        raise InvalidDestination("The destination is the zero address.")
    vault = getattr(settings, "VAULT_ADDRESS", "")
    if vault and address.lower() == vault.lower():
        raise InvalidDestination("The destination is the exchange's vault.")
    return address


def _existing(account: Account, request: WithdrawalRequest) -> Withdrawal | None:
    found = (
        Withdrawal.objects.select_related("asset", "account")
        .filter(account=account, idempotency_key=request.idempotency_key)
        .first()
    )
    if found is not None and found.request_fingerprint != request.fingerprint():
        raise IdempotencyConflict(
            "This idempotency key was used for a different withdrawal.",
            extra={"withdrawal_id": str(found.id)},
        )
    return found


def withdrawal_request(
    *, account: Account, request: WithdrawalRequest, now: datetime | None = None
) -> Requested:
    """Validate, check the limits, hold the funds and record the withdrawal; its workflow starts
    after commit. Retrying with the same idempotency key and request returns the first one."""
    if isinstance(request.amount, bool) or not isinstance(request.amount, int):
        raise TypeError("amount must be an int of base units")
    if request.amount <= 0:
        raise AmountNotPositive("The amount must be positive.")
    request = WithdrawalRequest(
        asset=request.asset,
        amount=request.amount,
        destination=normalize_destination(request.destination),
        idempotency_key=request.idempotency_key,
    )
    asset = Asset.objects.filter(symbol=request.asset).first()
    if asset is None:
        raise AssetNotFound(f"No asset {request.asset!r}.")
    if not asset.token_address:
        raise AssetNotWithdrawable(f"{asset.symbol} has no token on the settlement chain.")
    if (existing := _existing(account, request)) is not None:
        return Requested(existing, created=False)
    try:
        withdrawal, created = _create(account, asset, request, now)
    except IntegrityError:
        if (existing := _existing(account, request)) is not None:
            return Requested(existing, created=False)
        raise
    return Requested(withdrawal, created)


@transaction.atomic
def _create(
    account: Account, asset: Asset, request: WithdrawalRequest, now: datetime | None
) -> tuple[Withdrawal, bool]:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.withdrawals_frozen:
        raise WithdrawalsFrozen("Withdrawals are frozen for this account.")
    # Concurrent retries of one request wait on the account lock; the second finds the first.
    if (existing := _existing(account, request)) is not None:
        return existing, False
    asset_limits = _lock_asset_limits(asset)
    now = now or timezone.now()
    _check_allowlist(account, request.destination, now)
    limits = selectors.effective_limits(account=account, asset=asset, asset_limits=asset_limits)
    for window, limit, error in (
        (WINDOW_24H, limits.limit_24h, WithdrawalLimit24h),
        (WINDOW_30D, limits.limit_30d, WithdrawalLimit30d),
    ):
        if limit is None:
            continue
        used = selectors.withdrawn_since(asset=asset, account=account, since=now - window)
        if used + request.amount > limit:
            raise error(
                f"This withdrawal would exceed the account's rolling {error.code[-3:]} limit.",
                extra={
                    "asset": asset.symbol,
                    "limit": from_base_units(limit, asset.decimals),
                    "used": from_base_units(used, asset.decimals),
                    "requested": from_base_units(request.amount, asset.decimals),
                    "remaining": from_base_units(max(0, limit - used), asset.decimals),
                },
            )
    withdrawal_id = uuid.uuid4()
    hold(
        account=account,
        asset=asset,
        amount=request.amount,
        reference=ledger_reference(withdrawal_id),
        metadata={"destination": request.destination},
    )
    reasons = _approval_reasons(asset_limits, limits, request.amount, now)
    timeout = timedelta(seconds=float(setting("WITHDRAWAL_APPROVAL_TIMEOUT_SECONDS")))
    withdrawal = Withdrawal.objects.create(
        id=withdrawal_id,
        account=account,
        asset=asset,
        amount=request.amount,
        destination=request.destination,
        idempotency_key=request.idempotency_key,
        request_fingerprint=request.fingerprint(),
        state=State.PENDING_APPROVAL if reasons else State.APPROVED,
        auto_approved=not reasons,
        approval_reasons=reasons,
        approval_deadline=now + timeout if reasons else None,
        created_at=now,
    )
    _log_transition(
        withdrawal, "", actor=f"trader:{account.address}", note=", ".join(reasons), now=now
    )
    events.publish_on_commit(withdrawal)
    transaction.on_commit(lambda: _start_workflow(withdrawal))
    return withdrawal, True


def _start_workflow(withdrawal: Withdrawal) -> None:
    from exchange.withdrawals import temporal

    temporal.start_workflow(withdrawal)


def _lock_asset_limits(asset: Asset) -> AssetWithdrawalLimits:
    AssetWithdrawalLimits.objects.get_or_create(asset=asset)
    return AssetWithdrawalLimits.objects.select_for_update().get(asset=asset)


def _approval_reasons(
    row: AssetWithdrawalLimits, limits: selectors.EffectiveLimits, amount: int, now: datetime
) -> list[str]:
    """Why this withdrawal must wait for an admin; empty: it pays automatically. A withdrawal
    that would take automatic payouts past an exchange-wide cap trips the asset's breaker."""
    reasons = []
    if amount > limits.auto_approve_threshold:
        reasons.append("above_threshold")
    if row.breaker_tripped_at is not None:
        reasons.append("circuit_breaker")
    if reasons:
        return reasons
    for window, cap, name in (
        (WINDOW_1H, limits.exchange_cap_1h, "exchange_cap_1h"),
        (WINDOW_24H, limits.exchange_cap_24h, "exchange_cap_24h"),
    ):
        if cap is None:
            continue
        used = selectors.withdrawn_since(asset=row.asset, since=now - window, auto_only=True)
        if used + amount > cap:
            reasons.append(name)
            row.breaker_tripped_at = now
            row.breaker_reason = f"{name}: {used} + {amount} > {cap} base units"
            row.save(update_fields=["breaker_tripped_at", "breaker_reason", "updated_at"])
            # ERROR: this is the alert. Automatic payouts of the asset stop until cleared.
            log.error("withdrawals: %s circuit breaker tripped (%s)", row.asset, row.breaker_reason)
            break
    return reasons


def _check_allowlist(account: Account, destination: str, now: datetime) -> None:
    entries = WithdrawalAddress.objects.filter(account=account)
    if not (setting("WITHDRAWAL_ALLOWLIST_REQUIRED") or entries.exists()):
        return
    entry = entries.filter(address=destination, removed_at__isnull=True).first()
    if entry is None:
        raise DestinationNotAllowlisted(
            "The destination is not on this account's withdrawal address allowlist."
        )
    if entry.usable_from > now:
        raise DestinationCoolingOff(
            "The destination was allowlisted recently and is not usable yet.",
            extra={"usable_from": entry.usable_from.isoformat()},
        )


@transaction.atomic
def breaker_reset(*, asset: Asset, actor: str) -> AssetWithdrawalLimits:
    """Close the asset's circuit breaker: small withdrawals pay automatically again."""
    row = _lock_asset_limits(asset)
    if row.breaker_tripped_at is not None:
        log.warning("withdrawals: %s circuit breaker reset by %s", asset, actor)
        row.breaker_tripped_at = None
        row.breaker_reason = ""
        row.save(update_fields=["breaker_tripped_at", "breaker_reason", "updated_at"])
    return row


# ------------------------------------------------------------------------------ decisions
def _locked(withdrawal_id: object, account: Account | None = None) -> Withdrawal:
    rows = Withdrawal.objects.select_for_update(of=("self",)).select_related("account", "asset")
    if account is not None:
        rows = rows.filter(account=account)
    try:
        return rows.get(pk=withdrawal_id)
    except (Withdrawal.DoesNotExist, ValidationError, ValueError):
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.") from None


def _log_transition(
    withdrawal: Withdrawal, from_state: str, *, actor: str, note: str = "", now: datetime
) -> None:
    WithdrawalTransition.objects.create(
        withdrawal=withdrawal,
        from_state=from_state,
        to_state=withdrawal.state,
        actor=actor[:160],
        note=note,
        at=now,
    )


def _move(
    withdrawal: Withdrawal, state: str, *, actor: str, note: str = "", fields: tuple = ()
) -> None:
    """Save a state change with its audit row, and publish it after commit."""
    now = timezone.now()
    before = withdrawal.state
    withdrawal.state = state
    if state in FINAL_STATES:
        withdrawal.completed_at = now
    withdrawal.save(update_fields=["state", "completed_at", "updated_at", *fields])
    _log_transition(withdrawal, before, actor=actor, note=note, now=now)
    events.publish_on_commit(withdrawal)


@dataclass(frozen=True, slots=True)
class Decided:
    withdrawal: Withdrawal
    changed: bool  # False: it was decided already (its state says how)
    # Whether the workflow heard of it, once the signal went out after commit (empty until then).
    signalled: list[bool] = field(default_factory=list)


@transaction.atomic
def withdrawal_decide(
    *, withdrawal_id: object, decision: str, actor: str, note: str = ""
) -> Decided:
    """Record a decision on a withdrawal waiting for approval; first writer wins, anything else
    leaves it as it is. Used as is by the workflow; admins and traders use the wrappers below,
    which also signal the workflow."""
    target = DECISION_TARGETS.get(decision)
    if target is None:
        raise ValueError(f"unknown decision {decision!r}")
    withdrawal = _locked(withdrawal_id)
    if withdrawal.state != State.PENDING_APPROVAL:
        return Decided(withdrawal, changed=False)
    withdrawal.decided_at = timezone.now()
    withdrawal.decided_by = actor[:160]
    withdrawal.decision_note = note
    _move(
        withdrawal,
        target,
        actor=actor,
        note=note,
        fields=("decided_at", "decided_by", "decision_note"),
    )
    return Decided(withdrawal, changed=True)


def _decide_and_signal(
    withdrawal_id: object, decision: str, signal: str, *, actor: str, note: str
) -> Decided:
    decided = withdrawal_decide(
        withdrawal_id=withdrawal_id, decision=decision, actor=actor, note=note
    )
    withdrawal = decided.withdrawal
    # Signalled again when it was already decided this way: re-running the action re-sends it.
    if withdrawal.needs_approval and withdrawal.state == DECISION_TARGETS[decision]:
        transaction.on_commit(
            lambda: decided.signalled.append(_signal(withdrawal, signal, actor, note))
        )
    return decided


def _signal(withdrawal: Withdrawal, signal: str, actor: str, note: str) -> bool:
    from exchange.withdrawals import temporal

    return temporal.signal_decision(withdrawal, signal, actor=actor, note=note)


def withdrawal_approve(*, withdrawal_id: object, actor: str, note: str = "") -> Decided:
    return _decide_and_signal(withdrawal_id, "approve", "approve", actor=actor, note=note)


def withdrawal_reject(*, withdrawal_id: object, actor: str, note: str = "") -> Decided:
    return _decide_and_signal(withdrawal_id, "reject", "reject", actor=actor, note=note)


@transaction.atomic
def withdrawal_cancel(*, account: Account, withdrawal_id: object) -> Withdrawal:
    """The trader cancels a withdrawal still waiting for approval; its hold is released by the
    workflow once it hears (at once, or at the latest when its approval timer fires)."""
    withdrawal = _locked(withdrawal_id, account=account)
    if withdrawal.state != State.PENDING_APPROVAL:
        raise WithdrawalNotCancellable(
            "Only a withdrawal awaiting approval can be cancelled; "
            f"this one is {withdrawal.state}.",
            extra={"state": withdrawal.state},
        )
    actor = f"trader:{account.address}"
    return _decide_and_signal(withdrawal.id, "cancel", "cancel", actor=actor, note="").withdrawal


# -------------------------------------------------------------------- payout (activities)
@dataclass(frozen=True, slots=True)
class Paid:
    withdrawal: Withdrawal
    confirmations: int
    already_paid: bool


def _chain():  # type: ignore[no-untyped-def]
    # The vault, its operator and the RPC circuit breaker, as custody configures them.
    from exchange.custody.chain import clients

    return clients()


def _record_error(withdrawal_id: object, exc: BaseException) -> None:
    Withdrawal.objects.filter(pk=withdrawal_id).update(
        error=f"{type(exc).__name__}: {exc}"[:2000], updated_at=timezone.now()
    )


def withdrawal_pay(*, withdrawal_id: object) -> Paid:
    """Pay the withdrawal on chain, or find it paid there already; safe to call again at any
    point: the vault pays a withdrawal id at most once (``Vault.payout`` recognises it).

    Raises WithdrawalsFrozen (frozen before paying started), PayoutRejected, VaultBalanceShort,
    PayoutConflict and WithdrawalNotPayable for the workflow to handle; anything else (RPC
    trouble, a paused vault) is retried.
    """
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        if withdrawal.state == State.CONFIRMED:
            return Paid(withdrawal, withdrawal.confirmations, already_paid=True)
        if withdrawal.state not in PAYABLE_STATES:
            raise WithdrawalNotPayable(f"Withdrawal {withdrawal.id} is {withdrawal.state}.")
        withdrawal.payout_attempts += 1
        if withdrawal.state == State.APPROVED:
            if withdrawal.account.withdrawals_frozen:
                raise WithdrawalsFrozen("Withdrawals were frozen for this account.")
            _move(withdrawal, State.PAYING, actor="workflow", fields=("payout_attempts",))
        else:
            withdrawal.save(update_fields=["payout_attempts", "updated_at"])
    try:
        return _send_payout(withdrawal_id)
    except Exception as exc:
        _record_error(withdrawal_id, exc)
        raise


def _send_payout(withdrawal_id: object) -> Paid:
    chain = _chain()
    # The row lock is held across the chain call: a second attempt (a retry while a zombie
    # attempt still waits for its receipt) waits for the first to finish, then finds it paid.
    with transaction.atomic():
        withdrawal = _locked(withdrawal_id)
        if withdrawal.state not in (State.PAYING, State.SUBMITTED):
            raise WithdrawalNotPayable(f"Withdrawal {withdrawal.id} is {withdrawal.state}.")
        token = withdrawal.asset.token_address
        if not token:
            raise PayoutRejected(f"{withdrawal.asset.symbol} has no token on the settlement chain.")
        try:
            with chain.breaker.guard():
                payout = chain.vault.payout(
                    str(withdrawal.id),
                    account=withdrawal.account.address,
                    token=token,
                    amount=int(withdrawal.amount),
                    to=withdrawal.destination,
                    sender=chain.config.operator,
                )
                confirmations = chain.vault.confirmations(payout.tx)
        except ContractRevert as exc:
            if exc.name == "InsufficientBalance":
                raise VaultBalanceShort(f"The vault refused the payout: {exc}") from exc
            if exc.name in REJECTING_REVERTS:
                raise PayoutRejected(f"The vault refused the payout: {exc}") from exc
            raise
        except PayoutConflict as exc:
            if not _paid_events(chain, withdrawal):
                raise PayoutPending(f"Paid on chain, event not visible yet: {exc}") from exc
            raise  # paid under this id with other parameters: never retried
        tx = payout.tx
        withdrawal.tx_hash, withdrawal.block_number, withdrawal.block_hash = (
            tx.tx_hash,
            tx.block_number,
            tx.block_hash,
        )
        withdrawal.confirmations = confirmations
        withdrawal.error = ""
        fields = ("tx_hash", "block_number", "block_hash", "confirmations", "error")
        note = f"{tx.tx_hash} in block {tx.block_number}" + (
            " (found paid on chain)" if payout.already_paid else ""
        )
        _move(withdrawal, State.SUBMITTED, actor="workflow", note=note, fields=fields)
    log.info("withdrawals: %s paid in %s (%s)", withdrawal.id, tx.tx_hash, note)
    return Paid(withdrawal, confirmations, already_paid=payout.already_paid)


def _paid_events(chain, withdrawal: Withdrawal) -> list:  # type: ignore[no-untyped-def]
    with chain.breaker.guard():
        return chain.vault.contract.events.WithdrawalPaid.get_logs(
            from_block=chain.vault.from_block,
            argument_filters={"withdrawalId": withdrawal_key(str(withdrawal.id))},
        )


def withdrawal_confirmations(*, withdrawal_id: object) -> int:
    """Blocks on top of the payout (0: not on the canonical chain any more, so pay again)."""
    withdrawal = Withdrawal.objects.select_related("account", "asset").filter(pk=withdrawal_id)
    found = withdrawal.first()
    if found is None:
        raise WithdrawalNotFound(f"No withdrawal {withdrawal_id}.")
    if found.state == State.CONFIRMED:
        return found.confirmations
    if found.state != State.SUBMITTED or not found.tx_hash:
        return 0
    chain = _chain()
    with chain.breaker.guard():
        count = chain.vault.confirmations(
            TxResult(found.tx_hash, found.block_number or 0, found.block_hash, 0)
        )
    if count != found.confirmations:
        with transaction.atomic():
            row = _locked(withdrawal_id)
            if row.state == State.SUBMITTED:
                row.confirmations = count
                row.save(update_fields=["confirmations", "updated_at"])
                events.publish_on_commit(row)
    return count


@transaction.atomic
def withdrawal_complete(*, withdrawal_id: object, confirmations: int) -> Withdrawal:
    """The payout is deep enough: consume the hold into system:withdrawals, once."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.state == State.CONFIRMED:
        return withdrawal
    if withdrawal.state != State.SUBMITTED or withdrawal.hold_status != HoldStatus.HELD:
        raise WithdrawalNotPayable(
            f"Withdrawal {withdrawal.id} is {withdrawal.state} ({withdrawal.hold_status})."
        )
    pay_withdrawal(
        account=withdrawal.account,
        asset=withdrawal.asset,
        amount=int(withdrawal.amount),
        reference=ledger_reference(withdrawal.id),
        metadata={"tx_hash": withdrawal.tx_hash, "destination": withdrawal.destination},
    )
    withdrawal.hold_status = HoldStatus.CONSUMED
    withdrawal.confirmations = max(withdrawal.confirmations, confirmations)
    _move(
        withdrawal,
        State.CONFIRMED,
        actor="workflow",
        note=f"{confirmations} confirmations",
        fields=("hold_status", "confirmations"),
    )
    return withdrawal


@dataclass(frozen=True, slots=True)
class FailOutcome:
    withdrawal: Withdrawal
    failed: bool  # False: the chain shows it paid; the workflow keeps paying


@transaction.atomic
def withdrawal_fail(*, withdrawal_id: object, reason: str, release: bool = True) -> FailOutcome:
    """Fail a withdrawal whose payout cannot succeed. With ``release`` (nothing left the vault)
    the chain is asked first, under the row lock that payout attempts hold while they send:
    a withdrawal the vault shows paid is never failed (its funds must not be released)."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.state in FINAL_STATES:
        return FailOutcome(withdrawal, failed=withdrawal.state != State.CONFIRMED)
    if release and withdrawal.state in (State.PAYING, State.SUBMITTED):
        chain = _chain()
        with chain.breaker.guard():
            paid = chain.vault.withdrawal_paid(str(withdrawal.id))
        if paid:
            return FailOutcome(withdrawal, failed=False)
    withdrawal.error = reason[:2000]
    _move(withdrawal, State.FAILED, actor="workflow", note=reason[:500], fields=("error",))
    # ERROR: this is the alert; a payout conflict also leaves the hold for an operator.
    log.error(
        "withdrawals: %s FAILED (%s)%s",
        withdrawal.id,
        reason,
        "" if release else "; its hold is kept for an operator",
    )
    return FailOutcome(withdrawal, failed=True)


@transaction.atomic
def withdrawal_release(*, withdrawal_id: object) -> Withdrawal:
    """Give a withdrawal's held funds back (it was rejected, expired, cancelled or failed)."""
    withdrawal = _locked(withdrawal_id)
    if withdrawal.hold_status != HoldStatus.HELD:
        return withdrawal
    if withdrawal.state not in RELEASING_STATES:
        raise WithdrawalNotPayable(
            f"Withdrawal {withdrawal.id} is {withdrawal.state}; its hold is not released."
        )
    release(
        account=withdrawal.account,
        asset=withdrawal.asset,
        amount=int(withdrawal.amount),
        reference=ledger_reference(withdrawal.id),
        metadata={"state": withdrawal.state},
    )
    withdrawal.hold_status = HoldStatus.RELEASED
    withdrawal.save(update_fields=["hold_status", "updated_at"])
    events.publish_on_commit(withdrawal)
    return withdrawal


# ------------------------------------------------------------------------------ allowlist
def withdrawal_address_add(
    *, account: Account, address: str, label: str = "", now: datetime | None = None
) -> WithdrawalAddress:
    """Allowlist a destination; usable after the cooling-off period. From then on the account's
    withdrawals may only go to its allowlisted addresses."""
    address = normalize_destination(address)
    now = now or timezone.now()
    cooling = timedelta(seconds=float(setting("WITHDRAWAL_ADDRESS_COOLING_OFF_SECONDS")))
    try:
        with transaction.atomic():
            return WithdrawalAddress.objects.create(
                account=account,
                address=address,
                label=label,
                created_at=now,
                usable_from=now + cooling,
            )
    except IntegrityError:
        raise WithdrawalAddressExists(f"{address} is already allowlisted.") from None


def withdrawal_address_remove(
    *, account: Account, address_id: int, now: datetime | None = None
) -> WithdrawalAddress:
    entry = WithdrawalAddress.objects.filter(
        pk=address_id, account=account, removed_at__isnull=True
    ).first()
    if entry is None:
        raise WithdrawalAddressNotFound(f"No allowlisted address {address_id}.")
    entry.removed_at = now or timezone.now()
    entry.save(update_fields=["removed_at"])
    return entry
