"""Temporal unreachable when a withdrawal is made (or decided): the withdrawal is recorded and
held anyway, and `manage.py withdrawals_resume` starts its workflow later, delivering a decision
already recorded as the start signal."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from exchange.accounts.services import trader_get_or_create
from exchange.withdrawals import services, temporal
from exchange.withdrawals.models import Withdrawal
from tests.async_db import orm
from tests.waiting import within

from .support import USDC, balance, credit, new_address, running_worker, set_limits

pytestmark = pytest.mark.django_db(transaction=True)


async def test_workflows_that_could_not_start_are_started_later(live, monkeypatch):
    async def unreachable():  # type: ignore[no-untyped-def]
        raise RuntimeError("Temporal is down")

    def setup():  # type: ignore[no-untyped-def]
        account = trader_get_or_create(address=live.chain.traders[1])
        live.chain.deposit(account.address, "USDC", 100 * USDC)
        credit(account, live.usdc, 100 * USDC)
        set_limits(live.usdc, auto_approve_threshold=50 * USDC)
        return account

    account = await orm(setup)
    monkeypatch.setattr(temporal, "connect", unreachable)

    def make(amount: int, key: str) -> Withdrawal:
        request = services.WithdrawalRequest("USDC", amount, new_address(), key)
        return services.withdrawal_request(account=account, request=request).withdrawal

    small = await orm(make, 10 * USDC, "small")
    big = await orm(make, 80 * USDC, "big")
    cancelled = await orm(services.withdrawal_cancel, account=account, withdrawal_id=big.id)
    assert cancelled.state == "cancelled"
    rows = await orm(lambda: list(Withdrawal.objects.values_list("workflow_started_at", flat=True)))
    assert rows == [None, None]
    monkeypatch.undo()

    out = StringIO()
    await orm(call_command, "withdrawals_resume", stdout=out)
    assert "started 2 withdrawal workflow(s), 0 failed" in out.getvalue()

    async with running_worker(live.client, live.queue):
        for withdrawal in (small, big):
            handle = live.client.get_workflow_handle(str(withdrawal.id))
            await within(handle.result(), what=f"withdrawal {withdrawal.id}")

    assert await orm(lambda: Withdrawal.objects.get(pk=small.pk).state) == "confirmed"
    assert await orm(lambda: Withdrawal.objects.get(pk=big.pk).hold_status) == "released"
    assert await orm(balance, account, live.usdc) == (90 * USDC, 0)
    # Nothing is left to resume; running it again starts nothing.
    again = StringIO()
    await orm(call_command, "withdrawals_resume", stdout=again)
    assert "started 0" in again.getvalue()
