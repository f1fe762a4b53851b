"""Liveness and readiness probes, the address-restricted /metrics and the throttled admin
login. Plain Django views: probes must not depend on DRF auth."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView

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
