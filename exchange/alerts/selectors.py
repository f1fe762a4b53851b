from __future__ import annotations

from django.db.models import Q, QuerySet

from exchange.alerts.models import Alert

ACTIVE = Q(status=Alert.Status.FIRING, resolved_at__isnull=True)


def alert_list(
    *, state: str = "active", severity: str = "", alertname: str = "", limit: int = 100
) -> QuerySet[Alert]:
    """Newest first. ``state``: active (firing, not resolved by an operator), resolved (the
    others) or all."""
    alerts = Alert.objects.select_related("resolved_by")
    if state == "active":
        alerts = alerts.filter(ACTIVE)
    elif state == "resolved":
        alerts = alerts.exclude(ACTIVE)
    if severity:
        alerts = alerts.filter(severity=severity)
    if alertname:
        alerts = alerts.filter(alertname=alertname)
    return alerts.order_by("-starts_at", "-id")[:limit]
