"""Liveness and readiness probes. Plain Django views: probes must not depend on DRF auth."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from exchange.ops.readiness import run_checks


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
