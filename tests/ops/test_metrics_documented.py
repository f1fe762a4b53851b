"""Every metric Clearway exports is in docs/OPERATIONS.md's table, and every clearway_* metric an
alert rule reads is one Clearway exports (a renamed metric would silence its alert)."""

from __future__ import annotations

import importlib
import re

from prometheus_client import REGISTRY

from exchange.devstack.procs import REPO

METRIC_MODULES = (
    "exchange.trading.metrics",
    "exchange.matching_worker.metrics",
    "exchange.realtime.metrics",
    "exchange.custody.metrics",
    "exchange.ops.metrics",
)
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exported() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for metric in REGISTRY.collect():
        if metric.name.startswith("clearway_"):
            names.add(metric.name + ("_total" if metric.type == "counter" else ""))
    return names


def documented() -> set[str]:
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    return set(re.findall(r"^\| `(clearway_\w+)` \|", text, flags=re.MULTILINE))


def test_every_exported_metric_is_documented_and_nothing_else() -> None:
    assert exported() - documented() == set(), "metrics missing from docs/OPERATIONS.md"
    assert documented() - exported() == set(), "documented metrics nobody exports"


def test_alert_rules_read_only_metrics_that_exist() -> None:
    names = exported()
    rules = "".join(p.read_text() for p in (REPO / "ops" / "prometheus" / "rules").glob("*.yml"))
    for used in set(re.findall(r"\bclearway_\w+", rules)):
        base = used
        for suffix in SUFFIXES[:3]:
            base = base.removesuffix(suffix)
        assert used in names or base in names, f"{used} is read by a rule but not exported"


def test_the_grafana_dashboard_reads_metrics_that_exist() -> None:
    import json

    dashboard = json.loads((REPO / "ops" / "grafana" / "clearway.json").read_text())
    names = exported()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(dashboard["panels"]) >= 15
    for used in {m for expr in exprs for m in re.findall(r"\bclearway_\w+", expr)}:
        base = used
        for suffix in SUFFIXES[:3]:
            base = base.removesuffix(suffix)
        assert used in names or base in names, f"{used} is on the dashboard but not exported"
