"""Liveness and readiness probes, the address-restricted /metrics and the throttled admin
login. Plain Django views: probes must not depend on DRF auth."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

from exchange.errors import error_body
from exchange.ops.dashboard import PANELS, PrometheusUnavailable, active_alerts, panel_data
from exchange.ops.readiness import run_checks
from exchange.ratelimit import take


def _client_allowed(request: HttpRequest, networks: list) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in networks)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    # Metrics name every endpoint, error rate and queue depth: for the scraper only.
    if not _client_allowed(request, settings.METRICS_ALLOWED_NETWORKS):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return ExportToDjangoView(request)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login, with a token bucket per client address over its POSTs (each one a
    password guess). Staff sessions also authorise the risk API, so this guards that too."""
    if request.method == "POST":
        decision = take(
            f"admin-login:{request.META.get('REMOTE_ADDR', 'unknown')}",
            rate_per_second=settings.ADMIN_LOGIN_RATE_PER_MINUTE / 60,
            burst=settings.ADMIN_LOGIN_BURST,
        )
        if not decision.allowed:
            response = HttpResponse(
                "Too many login attempts from this address; retry later.\n",
                status=429,
                content_type="text/plain",
            )
            for name, value in decision.headers().items():
                response[name] = value
            return response
    return admin.site.login(request)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failing = [result.name for result in results if not result.ok]
    body = {
        "status": "unavailable" if failing else "ok",
        "failing": failing,
        "checks": {result.name: result.as_dict() for result in results},
    }
    return JsonResponse(body, status=503 if failing else 200)


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    minutes = _minutes(request)
    return render(
        request,
        "ops/dashboard.html",
        {
            "panels": PANELS,
            "title": "Ops dashboard",
            "prometheus_url": settings.PROMETHEUS_URL,
            "minutes": minutes or DEFAULT_MINUTES,
            "ranges": RANGES,
        },
    )


DEFAULT_MINUTES = 60
MAX_MINUTES = 7 * 24 * 60
RANGES = ((5, "5 min"), (60, "1 h"), (360, "6 h"), (1440, "24 h"))


def _minutes(request: HttpRequest) -> int | None:
    """The ``minutes`` query parameter: the default when absent, None when invalid."""
    try:
        minutes = int(request.GET.get("minutes", str(DEFAULT_MINUTES)))
    except ValueError:
        return None
    return minutes if 1 <= minutes <= MAX_MINUTES else None


@require_GET
def dashboard_data(request: HttpRequest) -> JsonResponse:
    # JSON errors for the page's script (a staff session is what the page itself required).
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return JsonResponse(error_body("forbidden", "Staff only."), status=403)
    minutes = _minutes(request)
    if minutes is None:
        return JsonResponse(
            error_body("validation_error", "minutes must be 1 to 10080.", {"field": "minutes"}),
            status=400,
        )
    try:
        data = panel_data(minutes=minutes)
    except PrometheusUnavailable as exc:
        return JsonResponse(
            error_body(
                "prometheus_unavailable",
                "Prometheus did not answer.",
                {"prometheus": settings.PROMETHEUS_URL, "error": str(exc)},
            ),
            status=503,
        )
    return JsonResponse({**data, "alerts": active_alerts()})
