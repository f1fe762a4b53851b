"""One error family and one DRF exception handler: every API error body is
``{"code": ..., "message": ..., "extra": {...}}`` with a stable, machine-readable ``code``.

Services raise :class:`ApplicationError` subclasses; views never build error bodies by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
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


class ServiceUnavailable(ApplicationError):
    """PostgreSQL or Redis went away mid-request (a restart, a failover): nothing was committed, and
    the same request can be sent again (an order's nonce makes a replay of it harmless)."""

    code = "service_unavailable"
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


log = logging.getLogger(__name__)


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
    from rest_framework.views import set_rollback

    # PostgreSQL or Redis (rate limits) went away mid-request: nothing was committed.
    if isinstance(
        exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError
    ):
        log.warning("a data store is unavailable: %s", exc, exc_info=exc)
        set_rollback()
        exc = ServiceUnavailable(
            "The exchange is briefly unavailable; retry shortly.", extra={"retry_after": 1}
        )
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


# ------------------------------------------------------------------ Django's own error views
# Requests that never reach a DRF view (an unknown URL, an int converter that does not match,
# a disallowed Host header) or that crash inside one are answered by these handlers (wired as
# handler400/403/404/500 in exchange.urls). Under /api/ they keep the one error body, so a
# client parses every error the same way; elsewhere (admin, ops pages) Django's HTML pages stay.
API_PREFIX = "/api/"


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def _json_error(code: str, message: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    return _json_error("bad_request", "The request could not be understood.", 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _json_error("forbidden", "You may not do this.", 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return _json_error("not_found", "No API endpoint at this path.", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Says nothing about the failure itself: details go to the log, never to the client.
    if not _is_api(request):
        return defaults.server_error(request)
    return _json_error("server_error", "An unexpected error occurred.", 500)


# Answers Django builds itself ignore handler404/500 while DEBUG is on (its technical pages list
# every URL pattern, or the traceback), and a few come from middleware (CSRF, APPEND_SLASH): under
# /api/ this middleware turns any non-JSON error answer into the one error body, whatever DEBUG.
_STATUS_CODES = {
    400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "request_too_large", 500: "server_error",
}  # fmt: skip
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")


class ApiErrorBodyMiddleware:
    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _is_api(request):
            return self.get_response(request)
        # Path parameters go to PostgreSQL as text, which cannot hold NUL: no API path has one.
        if "\x00" in request.path:
            return _json_error("not_found", "No API endpoint at this path.", 404)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        status_code = response.status_code
        code = _STATUS_CODES.get(status_code, "error")
        message = "An unexpected error occurred." if status_code >= 500 else f"HTTP {status_code}."
        if status_code == 404:
            message = "No API endpoint at this path."
        replaced = _json_error(code, message, status_code)
        for name in _KEPT_HEADERS:
            if name in response:
                replaced[name] = response[name]
        return replaced


def openapi_document_server_error(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: any operation can answer 500 ``server_error``
    (from :func:`server_error`) and 503 ``service_unavailable`` (the database went away), so
    every operation lists them with the one error body."""
    if "Error" not in result.get("components", {}).get("schemas", {}):
        return result  # no operation uses the error body: nothing to point the 500 at
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status_code, code in (("500", "server_error"), ("503", "service_unavailable")):
                documented = operation["responses"].get(status_code)
                if documented is None:
                    operation["responses"][status_code] = {
                        "description": f"Error codes: {code}.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
                elif code not in documented.get("description", ""):
                    # The operation's own 503 codes (chain_not_configured...) plus this one.
                    text = documented.get("description", "Error codes: .").rstrip(".")
                    documented["description"] = f"{text}, {code}."
    return result
