"""Alert errors, each with its stable code."""

from __future__ import annotations

from rest_framework import status

from exchange.errors import ApplicationError, Conflict, NotFound, Unauthenticated


class WebhookTokenInvalid(Unauthenticated):
    code = "webhook_token_invalid"


class WebhookNotConfigured(ApplicationError):
    code = "webhook_not_configured"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


class AlertNotFound(NotFound):
    code = "alert_not_found"


class AlertAlreadyResolved(Conflict):
    code = "alert_already_resolved"


class AlertmanagerUnavailable(ApplicationError):
    code = "alertmanager_unavailable"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
