"""Limits hold under any sequence of requests: concurrent requests from many threads (each on
its own database connection) never take an account past its 24-hour or 30-day limit, nor the
asset's automatic payouts past the exchange-wide cap; and over simulated time, with cancels, the
withdrawals that count in any window never sum past the limit, exactly as a reference model
decides request by request."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.accounts.services import trader_get_or_create
from exchange.errors import ApplicationError
from exchange.markets.models import Asset
from exchange.withdrawals import services
from exchange.withdrawals.models import COUNTED_STATES, Withdrawal
from tests.support import run_together

from .support import balance, credit, new_address, set_limits

FUNDS = 120
LIMIT_CODES = {"withdrawal_limit_24h", "withdrawal_limit_30d"}


def fresh_asset() -> Asset:
    return Asset.objects.create(
        symbol="T" + secrets.token_hex(4).upper(), decimals=0, token_address=new_address()
    )


def fresh_accounts(asset: Asset, count: int) -> list:  # type: ignore[type-arg]
    accounts = [trader_get_or_create(address=new_address()) for _ in range(count)]
    for account in accounts:
        credit(account, asset, FUNDS)
    return accounts


def request(account, asset: Asset, amount: int, key: str, now=None) -> str:  # type: ignore[no-untyped-def]
    try:
        withdrawal = services.withdrawal_request(
            account=account,
            request=services.WithdrawalRequest(asset.symbol, amount, new_address(), key),
            now=now,
        ).withdrawal
    except ApplicationError as error:
        return error.code
    return withdrawal.state


def counted(account, asset: Asset) -> int:  # type: ignore[no-untyped-def]
    return sum(
        Withdrawal.objects.filter(
            account=account, asset=asset, state__in=COUNTED_STATES
        ).values_list("amount", flat=True)
    )


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    requests=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 60)), min_size=2, max_size=16),
    limit_24h=st.integers(40, 150),
    extra_30d=st.integers(0, 60),
    threshold=st.integers(0, 60),
    cap=st.integers(20, 200),
)
def test_concurrent_requests_never_exceed_a_limit(
    temporal_calls, requests, limit_24h: int, extra_30d: int, threshold: int, cap: int
) -> None:
    asset = fresh_asset()
    limit_30d = limit_24h - 30 + extra_30d  # sometimes the tighter of the two
    set_limits(
        asset,
        auto_approve_threshold=threshold,
        account_limit_24h=limit_24h,
        account_limit_30d=limit_30d,
        exchange_cap_1h=cap,
    )
    accounts = fresh_accounts(asset, 3)

    outcomes = run_together(
        [
            lambda who=who, amount=amount, i=i: request(accounts[who], asset, amount, f"k{i}")
            for i, (who, amount) in enumerate(requests)
        ]
    )

    allowed = {"approved", "pending_approval", "insufficient_funds", *LIMIT_CODES}
    assert set(outcomes) <= allowed, outcomes
    for index, account in enumerate(accounts):
        used = counted(account, asset)
        assert used <= min(limit_24h, limit_30d)
        assert balance(account, asset) == (FUNDS - used, used)  # every accepted one held
        for (who, amount), outcome in zip(requests, outcomes, strict=True):
            if who != index:
                continue
            # A refusal was right: what was accepted (before or after it) leaves no room.
            if outcome == "withdrawal_limit_24h":
                assert used + amount > limit_24h
            elif outcome == "withdrawal_limit_30d":
                assert used + amount > limit_30d
            elif outcome == "insufficient_funds":
                assert FUNDS - used < amount
    automatic = Withdrawal.objects.filter(asset=asset, auto_approved=True)
    assert sum(automatic.values_list("amount", flat=True)) <= cap
    assert all(amount <= threshold for amount in automatic.values_list("amount", flat=True))
    assert outcomes.count("approved") == automatic.count()


Request = st.tuples(st.just("request"), st.integers(0, 1), st.integers(1, 70), st.integers(0, 72))
Cancel = st.tuples(st.just("cancel"), st.integers(0, 100))


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    operations=st.lists(st.one_of(Request, Request, Cancel), min_size=1, max_size=30),
    limit_24h=st.integers(30, 120),
    limit_30d=st.integers(60, 250),
)
def test_over_time_every_window_stays_within_the_limits(operations, limit_24h, limit_30d):
    asset = fresh_asset()
    set_limits(asset, auto_approve_threshold=35, account_limit_24h=limit_24h,
               account_limit_30d=limit_30d)  # fmt: skip
    accounts = fresh_accounts(asset, 2)
    # The reference model: (account index, amount, created at, still counted) per withdrawal.
    model: list[list] = []  # type: ignore[type-arg]
    rows: list[Withdrawal] = []
    available = [FUNDS, FUNDS]
    now = timezone.now()

    def used(who: int, window: timedelta) -> int:
        return sum(a for w, a, at, live in model if w == who and live and at > now - window)

    for step, operation in enumerate(operations):
        if operation[0] == "request":
            _, who, amount, hours = operation
            now += timedelta(hours=hours)
            if used(who, timedelta(hours=24)) + amount > limit_24h:
                expected = "withdrawal_limit_24h"
            elif used(who, timedelta(days=30)) + amount > limit_30d:
                expected = "withdrawal_limit_30d"
            elif available[who] < amount:
                expected = "insufficient_funds"
            else:
                expected = "approved" if amount <= 35 else "pending_approval"
            assert request(accounts[who], asset, amount, f"s{step}", now=now) == expected
            if expected in ("approved", "pending_approval"):
                model.append([who, amount, now, True])
                available[who] -= amount
                rows.append(
                    Withdrawal.objects.get(account=accounts[who], idempotency_key=f"s{step}")
                )
        else:
            waiting = [i for i, row in enumerate(rows) if row.state == "pending_approval"]
            if not waiting:
                continue
            index = waiting[operation[1] % len(waiting)]
            row = rows[index]
            rows[index] = services.withdrawal_cancel(account=row.account, withdrawal_id=row.id)
            services.withdrawal_release(withdrawal_id=row.id)  # as its workflow would
            model[index][3] = False
            available[model[index][0]] += model[index][1]

    # Every window, read back from the database: the counted withdrawals of any 24 hours (30
    # days) starting at one of them sum to at most the limit.
    for who, account in enumerate(accounts):
        times = list(
            Withdrawal.objects.filter(account=account, state__in=COUNTED_STATES).values_list(
                "created_at", "amount"
            )
        )
        for start, _ in times:
            for window, limit in (
                (timedelta(hours=24), limit_24h),
                (timedelta(days=30), limit_30d),
            ):
                inside = sum(a for at, a in times if start <= at < start + window)
                assert inside <= limit
        assert balance(account, asset)[0] == available[who]
