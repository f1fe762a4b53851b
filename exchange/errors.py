"""One error family and one DRF exception handler: every API error body is
``{"code": ..., "message": ..., "extra": {...}}`` with a stable, machine-readable ``code``.

Services raise :class:`ApplicationError` subclasses; views never build error bodies by hand.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response


class ApplicationError(Exception):
    """A business error with a stable code. Subclasses set ``code`` and ``status_code``."""

    code = "application_error"
    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}


class ValidationFailed(ApplicationError):
    code = "validation_error"
    status_code = status.HTTP_400_BAD_REQUEST


class NotFound(ApplicationError):
    code = "not_found"
    status_code = status.HTTP_404_NOT_FOUND


class Conflict(ApplicationError):
    code = "conflict"
    status_code = status.HTTP_409_CONFLICT


class Forbidden(ApplicationError):
    code = "forbidden"
    status_code = status.HTTP_403_FORBIDDEN


class Unauthenticated(ApplicationError):
    code = "not_authenticated"
    status_code = status.HTTP_401_UNAUTHORIZED


class RateLimited(ApplicationError):
    code = "rate_limited"
    status_code = status.HTTP_429_TOO_MANY_REQUESTS


# DRF's own exceptions keep their status; these codes replace DRF's defaults where they differ.
_DRF_CODES: dict[type[Exception], str] = {
    drf_exceptions.ValidationError: "validation_error",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.PermissionDenied: "forbidden",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "rate_limited",
}


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views resolves DEFAULT_AUTHENTICATION_CLASSES at import
    # time, and those import services that import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ApplicationError):
        response = Response(error_body(exc.code, exc.message, exc.extra), status=exc.status_code)
        retry_after = exc.extra.get("retry_after")
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        # Errors may carry protocol headers (a 429's X-RateLimit-*), set by whoever raised them.
        for name, value in getattr(exc, "headers", {}).items():
            response[name] = value
        return response

    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: let Django log it and answer 500
    code = _DRF_CODES.get(type(exc), getattr(exc, "default_code", "error"))
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = error_body(code, "The request is invalid.", {"fields": exc.detail})
    else:
        detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
        response.data = error_body(code, str(detail))
    return response
