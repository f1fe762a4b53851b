"""The ops dashboard's data: a fixed set of panels, each a few PromQL queries over the same
time range and step (so their points line up for the charts), read from Prometheus's query API
server-side; the browser never talks to Prometheus and cannot send it queries of its own."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings

from exchange.alerts.selectors import alert_list


class PrometheusUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]  # (legend: a label name in {}, or a fixed name; PromQL)


def _quantile(q: float, histogram: str, window: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{window}])))"


INTAKE = "clearway_order_intake_seconds"
FINALITY = "clearway_settlement_latency_seconds"

PANELS = (
    Panel("intake_rate", "Order intake by outcome", "req/s", (
        ("{outcome}", "sum by (outcome) (rate(clearway_order_intake_seconds_count[1m]))"),
    )),
    Panel("intake_latency", "Order intake latency", "s", (
        ("p50", _quantile(0.5, INTAKE, "5m")),
        ("p95", _quantile(0.95, INTAKE, "5m")),
    )),
    Panel("matching_lag", "Matching lag per market", "commands", (
        ("{market}", "max by (market) (clearway_matching_lag_commands)"),
    )),
    Panel("settlement_backlog", "Settlement backlog", "", (
        ("trades waiting", "clearway_settlement_backlog_trades"),
        ("oldest (s)", "clearway_settlement_oldest_unsettled_seconds"),
    )),
    Panel("settlement_finality", "Settlement finality (trade to final)", "s", (
        ("p50", _quantile(0.5, FINALITY, "10m")),
        ("p95", _quantile(0.95, FINALITY, "10m")),
    )),
    Panel("chain", "Chain head vs processed block", "block", (
        ("head", "clearway_chain_head_block"),
        ("processed", "clearway_chain_scanned_block"),
    )),
    Panel("withdrawals", "Withdrawals awaiting approval", "", (
        ("waiting", "clearway_withdrawals_awaiting_approval"),
        ("oldest (min)", "clearway_withdrawals_oldest_awaiting_approval_seconds / 60"),
    )),
    Panel("breakers", "RPC circuit breakers (0 closed, 1 open, 2 half-open)", "", (
        ("{endpoint}", "clearway_rpc_circuit_state"),
    )),
)  # fmt: skip


def _legend(template: str, labels: dict[str, str]) -> str:
    if template.startswith("{") and template.endswith("}"):
        return labels.get(template[1:-1], "") or "(none)"
    return template


def _query_range(query: str, start: float, end: float, step: int) -> list[dict[str, Any]]:
    try:
        response = requests.get(
            f"{settings.PROMETHEUS_URL.rstrip('/')}/api/v1/query_range",
            params={"query": query, "start": start, "end": end, "step": step},
            timeout=5,
        )
        response.raise_for_status()
        return response.json()["data"]["result"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise PrometheusUnavailable(str(exc)[:200]) from exc


def panel_data(*, minutes: int, now: float | None = None) -> dict[str, Any]:
    """Every panel over the last ``minutes``: one shared time axis (``x``, unix seconds) and
    per series a value per x (None where Prometheus had none), as uPlot draws them."""
    end = float(int(now if now is not None else time.time()))
    step = max(1, minutes * 60 // 240)  # ~240 points per series whatever the range
    start = end - minutes * 60
    xs = [start + i * step for i in range(int((end - start) // step) + 1)]
    index = {x: i for i, x in enumerate(xs)}
    panels = []
    for panel in PANELS:
        series = []
        for legend, query in panel.queries:
            for result in _query_range(query, start, end, step):
                values: list[float | None] = [None] * len(xs)
                for t, v in result["values"]:
                    position = index.get(float(t))
                    if position is not None and v not in ("NaN", "+Inf", "-Inf"):
                        values[position] = float(v)
                series.append({"name": _legend(legend, result["metric"]), "values": values})
        panels.append({"id": panel.id, "title": panel.title, "unit": panel.unit,
                       "series": series})  # fmt: skip
    return {"x": xs, "panels": panels}


def active_alerts() -> list[dict[str, Any]]:
    return [
        {
            "id": alert.pk,
            "alertname": alert.alertname,
            "severity": alert.severity,
            "summary": alert.annotations.get("summary", ""),
            "starts_at": alert.starts_at.isoformat(),
            "runbook_url": alert.annotations.get("runbook_url", ""),
        }
        for alert in alert_list(state="active", limit=50)
    ]
