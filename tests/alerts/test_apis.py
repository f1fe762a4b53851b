"""The alerts API: Alertmanager's webhook stores alerts, staff list them and resolve them (with a
real Alertmanager silence), and bad input changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from exchange.accounts.services import token_create, trader_get_or_create
from exchange.alerts.models import Alert

from .conftest import user_client

pytestmark = pytest.mark.django_db

WEBHOOK = "/api/v1/alerts/webhook"
STARTS = "2026-12-05T10:00:00Z"


def report(status: str = "firing", fingerprint: str = "a1b2c3", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "LedgerImbalance", "severity": "critical", **labels},
        "annotations": {
            "summary": "The ledger check finds 1 asset(s) out of balance",
            "runbook_url": "docs/OPERATIONS.md#ledgerimbalance",
        },
        "startsAt": STARTS,
        "endsAt": "2026-12-05T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=clearway_ledger_imbalance",
        "fingerprint": fingerprint,
    }


def notify(client: APIClient, *alerts: dict) -> dict:
    body = {"version": "4", "status": alerts[0]["status"], "receiver": "clearway", "alerts": alerts}
    response = client.post(WEBHOOK, body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_firing_alert_is_stored_and_listed_then_resolved_by_alertmanager(
    alerts_settings, alertmanager_client: APIClient, staff: APIClient
) -> None:
    assert notify(alertmanager_client, report(job="clearway-temporal-worker")) == {"stored": 1}
    notify(alertmanager_client, report())  # the same episode again: updated, not duplicated
    [listed] = staff.get("/api/v1/alerts").json()
    assert listed["alertname"] == "LedgerImbalance" and listed["severity"] == "critical"
    assert (listed["status"], listed["active"], listed["ends_at"]) == ("firing", True, None)
    assert listed["fingerprint"] == "a1b2c3"
    assert listed["starts_at"] == "2026-12-05T10:00:00Z"
    assert listed["runbook_url"] == "docs/OPERATIONS.md#ledgerimbalance"
    assert listed["resolution"] is None

    notify(alertmanager_client, report("resolved"))
    assert staff.get("/api/v1/alerts").json() == []
    [done] = staff.get("/api/v1/alerts", {"status": "resolved"}).json()
    assert (done["id"], done["status"], done["active"]) == (listed["id"], "resolved", False)
    assert done["ends_at"] == "2026-12-05T10:05:00Z"
    # A late firing notification of the same episode does not bring it back.
    notify(alertmanager_client, report())
    assert staff.get("/api/v1/alerts").json() == []


def test_the_list_filters_by_severity_and_name(
    alerts_settings, alertmanager_client: APIClient, staff: APIClient
) -> None:
    notify(
        alertmanager_client,
        report(fingerprint="f1"),
        {
            **report(fingerprint="f2"),
            "labels": {"alertname": "DiskAlmostFull", "severity": "warning"},
        },
    )
    names = lambda **q: [a["alertname"] for a in staff.get("/api/v1/alerts", q).json()]  # noqa: E731
    assert sorted(names()) == ["DiskAlmostFull", "LedgerImbalance"]
    assert names(severity="warning") == ["DiskAlmostFull"]
    assert names(alertname="LedgerImbalance") == ["LedgerImbalance"]
    assert names(status="all", severity="info") == []
    bad = staff.get("/api/v1/alerts", {"status": "sleeping"})
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")


def test_resolving_records_who_and_why_and_silences_it_in_alertmanager(
    alerts_settings, alertmanager_client: APIClient, staff: APIClient, alertmanager_url: str
) -> None:
    labels = {"job": "clearway-temporal-worker", "instance": "127.0.0.1:9464"}
    notify(alertmanager_client, report(**labels))
    alert = Alert.objects.get()
    before = datetime.now(UTC)

    response = staff.post(
        f"/api/v1/alerts/{alert.pk}/resolve",
        {"note": "corrected by entry 812", "silence_minutes": 30},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["active"] is False and body["status"] == "firing"
    resolution = body["resolution"]
    assert resolution["note"] == "corrected by entry 812"
    assert resolution["by"] == response.wsgi_request.user.get_username()
    silenced_until = datetime.fromisoformat(resolution["silenced_until"])
    assert timedelta(minutes=29) < silenced_until - before < timedelta(minutes=31)
    silence = requests.get(
        f"{alertmanager_url}/api/v2/silence/{resolution['silence_id']}", timeout=5
    ).json()
    assert silence["status"]["state"] == "active"
    assert silence["comment"] == "corrected by entry 812"
    assert {(m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]} == {
        (name, value, True) for name, value in alert.labels.items()
    }
    assert staff.get("/api/v1/alerts").json() == []

    again = staff.post(f"/api/v1/alerts/{alert.pk}/resolve", {"note": "twice"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "alert_already_resolved")


def test_an_alert_still_firing_after_its_silence_is_active_again(
    alerts_settings, alertmanager_client: APIClient, staff: APIClient
) -> None:
    notify(alertmanager_client, report())
    alert = Alert.objects.get()
    staff.post(f"/api/v1/alerts/{alert.pk}/resolve", {"note": "n", "silence_minutes": 1},
               format="json")  # fmt: skip
    Alert.objects.filter(pk=alert.pk).update(
        silenced_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    notify(alertmanager_client, report())
    [listed] = staff.get("/api/v1/alerts").json()
    assert listed["active"] is True and listed["resolution"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "validation_error"),
        ({"note": ""}, 400, "validation_error"),
        ({"note": "x", "silence_minutes": 0}, 400, "validation_error"),
        ({"note": "x", "silence_minutes": 7 * 24 * 60 + 1}, 400, "validation_error"),
    ],
)
def test_invalid_resolutions_change_nothing(
    alerts_settings, alertmanager_client, staff, body, status, code
) -> None:  # type: ignore[no-untyped-def]
    notify(alertmanager_client, report())
    alert = Alert.objects.get()
    response = staff.post(f"/api/v1/alerts/{alert.pk}/resolve", body, format="json")
    assert (response.status_code, response.json()["code"]) == (status, code)
    alert.refresh_from_db()
    assert alert.active and alert.silence_id == ""


def test_unknown_alert_is_404(alerts_settings, staff: APIClient) -> None:
    response = staff.post("/api/v1/alerts/999999/resolve", {"note": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "alert_not_found")


def test_alertmanager_down_means_503_and_nothing_resolved(
    alerts_settings, alertmanager_client: APIClient, staff: APIClient
) -> None:
    notify(alertmanager_client, report())
    alert = Alert.objects.get()
    alerts_settings.ALERTMANAGER_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    response = staff.post(f"/api/v1/alerts/{alert.pk}/resolve", {"note": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "alertmanager_unavailable")
    alert.refresh_from_db()
    assert alert.active and alert.resolved_by is None and alert.silence_id == ""


def test_the_webhook_needs_the_shared_token(alerts_settings) -> None:
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer not-the-token")
    for client in (APIClient(), wrong):
        response = client.post(WEBHOOK, {"alerts": [report()]}, format="json")
        assert (response.status_code, response.json()["code"]) == (401, "webhook_token_invalid")
    alerts_settings.ALERTMANAGER_WEBHOOK_TOKEN = ""
    response = wrong.post(WEBHOOK, {"alerts": [report()]}, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "webhook_not_configured")
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    "alerts",
    [
        None,
        [{**report(), "status": "exploded"}],
        [{**report(), "startsAt": "yesterday"}],
        [{**report(), "fingerprint": "x" * 65}],
        [report(), {**report(fingerprint="b"), "labels": "not a map"}],
    ],
)
def test_a_malformed_notification_stores_nothing(
    alerts_settings, alertmanager_client, alerts
) -> None:  # type: ignore[no-untyped-def]
    body = {} if alerts is None else {"alerts": alerts}
    response = alertmanager_client.post(WEBHOOK, body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    assert not Alert.objects.exists()


def test_only_staff_may_list_or_resolve(alerts_settings, alertmanager_client, db) -> None:  # type: ignore[no-untyped-def]
    notify(alertmanager_client, report())
    alert = Alert.objects.get()
    trader = trader_get_or_create(address="0x" + "Ab" * 20)
    as_trader = APIClient()
    as_trader.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=trader).token}")
    clients = {
        "anonymous": (APIClient(), 401, "not_authenticated"),
        "trader": (as_trader, 403, "forbidden"),
        "non-staff user": (user_client(is_staff=False), 403, "forbidden"),
    }
    for name, (client, status, code) in clients.items():
        for response in (
            client.get("/api/v1/alerts"),
            client.post(f"/api/v1/alerts/{alert.pk}/resolve", {"note": "x"}, format="json"),
        ):
            assert (response.status_code, response.json()["code"]) == (status, code), name
    alert.refresh_from_db()
    assert alert.active


def test_alerts_are_in_the_schema_with_their_errors() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    listing = schema["paths"]["/api/v1/alerts"]["get"]
    resolve = schema["paths"]["/api/v1/alerts/{alert_id}/resolve"]["post"]
    webhook = schema["paths"]["/api/v1/alerts/webhook"]["post"]
    assert (listing["operationId"], resolve["operationId"], webhook["operationId"]) == (
        "alerts_list", "alerts_resolve", "alerts_webhook",
    )  # fmt: skip
    assert "alert_not_found" in resolve["responses"]["404"]["description"]
    assert "alert_already_resolved" in resolve["responses"]["409"]["description"]
    assert "alertmanager_unavailable" in resolve["responses"]["503"]["description"]
    assert "webhook_token_invalid" in webhook["responses"]["401"]["description"]
    assert schema["components"]["schemas"]["Alert"]["properties"]["resolution"]


def test_alerts_show_in_the_admin(alerts_settings, alertmanager_client, admin_client) -> None:  # type: ignore[no-untyped-def]
    notify(alertmanager_client, report())
    page = admin_client.get("/admin/alerts/alert/")
    assert page.status_code == 200
    assert b"LedgerImbalance" in page.content
