"""Template context for the admin's header: links to the operators' other consoles."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse


def links(request: HttpRequest) -> dict[str, dict[str, str]]:
    return {
        "clearway_links": {
            "withdrawals_pending": reverse("admin:withdrawals_withdrawal_changelist")
            + "?queue=awaiting",
            "temporal_ui": (
                f"{settings.TEMPORAL_UI_URL.rstrip('/')}/namespaces/{settings.TEMPORAL_NAMESPACE}"
                "/workflows"
            ),
            "api_docs": reverse("api-docs"),
            "readiness": reverse("readyz"),
            "metrics": "/metrics",
            "ops_dashboard": reverse("ops-dashboard"),
        }
    }
