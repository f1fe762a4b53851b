"""Alerts: what Alertmanager reports (alerts_receive) and what operators decide (alert_resolve)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from exchange.alerts import alertmanager
from exchange.alerts.errors import AlertAlreadyResolved, AlertNotFound
from exchange.alerts.models import Alert

# Alertmanager's "no end" (a firing alert's endsAt) is the zero time of Go.
_NO_END_BEFORE_YEAR = 2


@dataclass(frozen=True, slots=True)
class Reported:
    """One alert of an Alertmanager webhook notification (validated by the API)."""

    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str


def _end(value: datetime | None) -> datetime | None:
    return None if value is None or value.year < _NO_END_BEFORE_YEAR else value


@transaction.atomic
def alerts_receive(*, alerts: list[Reported]) -> list[Alert]:
    """Record a notification: a new episode is created, a known one updated. Resolved is final
    for an episode (Alertmanager may deliver an older firing notification late); an episode an
    operator resolved that still fires once its silence has ended becomes active again."""
    now = timezone.now()
    stored: list[Alert] = []
    # Sorted, so that two notifications touching the same alerts lock them in the same order.
    for report in sorted(alerts, key=lambda a: (a.fingerprint, a.starts_at)):
        alert, created = Alert.objects.select_for_update().get_or_create(
            fingerprint=report.fingerprint,
            starts_at=report.starts_at,
            defaults={
                "alertname": report.labels.get("alertname", ""),
                "severity": report.labels.get("severity", ""),
                "labels": report.labels,
                "annotations": report.annotations,
                "status": report.status,
                "ends_at": _end(report.ends_at) if report.status == Alert.Status.RESOLVED else None,
                "generator_url": report.generator_url,
            },
        )
        if not created:
            _update(alert, report, now)
        stored.append(alert)
    return stored


def _update(alert: Alert, report: Reported, now: datetime) -> None:
    alert.annotations = report.annotations
    if alert.status != Alert.Status.RESOLVED:
        alert.status = report.status
        if report.status == Alert.Status.RESOLVED:
            alert.ends_at = _end(report.ends_at) or now
    if (
        alert.status == Alert.Status.FIRING
        and alert.resolved_at is not None
        and alert.silenced_until is not None
        and now >= alert.silenced_until
    ):
        alert.resolved_at = None
        alert.resolved_by = None
        ended = f"{alert.silenced_until:%Y-%m-%d %H:%M:%S}Z"
        alert.resolution_note += f"\n(still firing when the silence ended at {ended}: reopened)"
    alert.save()


def alert_resolve(
    *, alert_id: int, user: AbstractBaseUser, note: str, silence_minutes: int
) -> Alert:
    """An operator resolves an active alert: Alertmanager silences its label set for
    ``silence_minutes`` (so it does not notify again while the fix takes effect), and the alert
    records who, when, why and the silence. Alertmanager unreachable: nothing changes (503)."""
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise AlertNotFound(f"No alert {alert_id}.", extra={"id": alert_id})
    if not alert.active:
        raise AlertAlreadyResolved(_resolved_message(alert), extra=_resolved_extra(alert))
    now = timezone.now()
    until = now + timedelta(minutes=silence_minutes)
    # Outside the transaction: no row lock is held across a network call.
    silence_id = alertmanager.silence_create(
        labels=alert.labels,
        starts_at=now,
        ends_at=until,
        created_by=user.get_username(),
        comment=note,
    )
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        if not alert.active:
            # Someone else (or Alertmanager) got there first; the extra silence is harmless.
            raise AlertAlreadyResolved(_resolved_message(alert), extra=_resolved_extra(alert))
        alert.resolved_by = user
        alert.resolved_at = now
        alert.resolution_note = note
        alert.silence_id = silence_id
        alert.silenced_until = until
        alert.save()
    return alert


def _resolved_message(alert: Alert) -> str:
    if alert.resolved_at is not None:
        return f"Alert {alert.pk} was already resolved by an operator."
    return f"Alert {alert.pk} is no longer firing."


def _resolved_extra(alert: Alert) -> dict[str, Any]:
    return {"id": alert.pk, "status": alert.status}
