"""The withdrawal admin: the approval queue, approve / reject actions that record the decision
and signal the workflow, each withdrawal linking to its workflow in the Temporal UI, and the
limits pages with the circuit breaker reset."""

from __future__ import annotations

import pytest
from django.utils import timezone

from exchange.withdrawals import services
from exchange.withdrawals.models import AssetWithdrawalLimits, Withdrawal

from .support import USDC, credit, new_address, set_limits

pytestmark = pytest.mark.django_db

LIST = "/admin/withdrawals/withdrawal/"


@pytest.fixture
def withdrawals(trader, usdc):  # type: ignore[no-untyped-def]
    credit(trader, usdc, 1_000 * USDC)
    set_limits(usdc, auto_approve_threshold=100 * USDC)

    def make(amount: int, key: str) -> Withdrawal:
        request = services.WithdrawalRequest("USDC", amount, new_address(), key)
        return services.withdrawal_request(account=trader, request=request).withdrawal

    return make(500 * USDC, "big"), make(600 * USDC // 2, "bigger"), make(5 * USDC, "small")


def test_the_approval_queue_links_each_withdrawal_to_its_workflow(
    admin_client, withdrawals, settings
):
    settings.TEMPORAL_UI_URL = "http://temporal.example:8233"
    settings.TEMPORAL_NAMESPACE = "clearway"
    big, bigger, small = withdrawals

    page = admin_client.get(LIST + "?queue=awaiting").content.decode()

    assert str(big.id) in page and str(bigger.id) in page and str(small.id) not in page
    assert f"http://temporal.example:8233/namespaces/clearway/workflows/{big.id}" in page
    assert "500 USDC" in page and "above_threshold" in page
    detail = admin_client.get(f"{LIST}{big.id}/change/")
    assert detail.status_code == 200 and "pending_approval" in detail.content.decode()
    assert admin_client.get(LIST + "add/").status_code == 403


def test_approve_and_reject_record_the_decision_and_signal_the_workflow(
    admin_client, withdrawals, temporal_calls, django_capture_on_commit_callbacks
):
    big, bigger, small = withdrawals
    with django_capture_on_commit_callbacks(execute=True):
        approved = admin_client.post(
            LIST, {"action": "approve", "_selected_action": [str(big.id), str(small.id)]},
            follow=True,
        )  # fmt: skip
        admin_client.post(LIST, {"action": "reject", "_selected_action": [str(bigger.id)]})

    messages = [str(m) for m in approved.context["messages"]]
    assert "Approved 1 withdrawal(s)." in messages
    assert any(str(small.id) in m and "Not awaiting approval" in m for m in messages)
    assert Withdrawal.objects.get(pk=big.pk).state == "approved"
    assert Withdrawal.objects.get(pk=big.pk).decided_by == "admin:admin"
    assert Withdrawal.objects.get(pk=bigger.pk).state == "rejected"
    assert temporal_calls.signals == [
        (str(big.id), "approve", "admin:admin"),
        (str(bigger.id), "reject", "admin:admin"),
    ]


@pytest.mark.django_db(transaction=True)  # commits, so the signal goes out within the request
def test_a_decision_temporal_did_not_hear_of_is_reported(
    admin_client, temporal_calls, withdrawals, monkeypatch
):
    from exchange.withdrawals import temporal

    monkeypatch.setattr(temporal, "signal_decision", lambda *args, **kwargs: False)
    big, _, _ = withdrawals
    response = admin_client.post(
        LIST, {"action": "approve", "_selected_action": [str(big.id)]}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("could not be told" in m and str(big.id) in m for m in messages)


def test_limits_pages_and_the_breaker_reset(admin_client, usdc, trader):
    row = set_limits(usdc, breaker_tripped_at=timezone.now(), breaker_reason="exchange_cap_1h")
    assert admin_client.get("/admin/withdrawals/assetwithdrawallimits/").status_code == 200
    assert admin_client.get("/admin/withdrawals/accountwithdrawallimits/").status_code == 200
    assert admin_client.get("/admin/withdrawals/withdrawaladdress/").status_code == 200

    admin_client.post(
        "/admin/withdrawals/assetwithdrawallimits/",
        {"action": "reset_breaker", "_selected_action": [str(row.pk)]},
    )

    row = AssetWithdrawalLimits.objects.get(pk=row.pk)
    assert (row.breaker_tripped_at, row.breaker_reason) == (None, "")
