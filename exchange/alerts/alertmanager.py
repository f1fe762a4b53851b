"""The bit of Alertmanager's v2 API Clearway uses: creating a silence."""

from __future__ import annotations

from datetime import datetime

import requests
from django.conf import settings

from exchange.alerts.errors import AlertmanagerUnavailable


def silence_create(
    *, labels: dict[str, str], starts_at: datetime, ends_at: datetime, created_by: str, comment: str
) -> str:
    """Silence exactly this label set (every label matched for equality); returns its id."""
    body = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in sorted(labels.items())
        ],
        "startsAt": starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "createdBy": created_by,
        "comment": comment,
    }
    url = f"{settings.ALERTMANAGER_URL.rstrip('/')}/api/v2/silences"
    try:
        response = requests.post(url, json=body, timeout=settings.ALERTMANAGER_TIMEOUT)
        response.raise_for_status()
        return str(response.json()["silenceID"])
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise AlertmanagerUnavailable(
            "Alertmanager did not create the silence; nothing was changed.",
            extra={"alertmanager": settings.ALERTMANAGER_URL, "error": str(exc)[:200]},
        ) from exc
