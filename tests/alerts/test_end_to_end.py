"""End to end through the real tools: a metric Clearway exports goes bad, Prometheus (on the
repo's alert rules) fires, Alertmanager (on the repo's config) calls Clearway's webhook, the alert
shows in GET /api/v1/alerts; it resolves when the metric recovers, and when it fires again an
operator resolves it, which silences it in Alertmanager.

The metric is the ledger-imbalance gauge, served by a tiny exporter this test runs (as the
Temporal worker would) so that the test decides when the ledger is "out of balance"."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from rest_framework.test import APIClient

from exchange.devstack import services
from exchange.devstack.monitoring import (
    RULES_GLOB,
    render_alertmanager_config,
    render_prometheus_config,
)
from exchange.devstack.procs import free_port
from tests.support import TEST_LOG_DIR
from tests.waiting import wait_for

from .conftest import TOKEN

WAIT = 60  # seconds any one step may take; each happens within a few scrape intervals


@dataclass
class Monitoring:
    prometheus: str
    alertmanager: str
    imbalance: Gauge


@pytest.fixture
def monitoring(live_server, settings, tmp_path) -> Iterator[Monitoring]:  # type: ignore[no-untyped-def]
    registry = CollectorRegistry()
    imbalance = Gauge("clearway_ledger_imbalance", "test double", registry=registry)
    imbalance.set(0)
    exporter_port = free_port()
    server, thread = start_http_server(exporter_port, addr="127.0.0.1", registry=registry)

    am_port, prom_port = free_port(), free_port()
    settings.ALERTMANAGER_URL = f"http://127.0.0.1:{am_port}"
    settings.ALERTMANAGER_WEBHOOK_TOKEN = TOKEN
    am_config = render_alertmanager_config(
        dest_dir=tmp_path / "alertmanager",
        webhook_url=f"{live_server.url}/api/v1/alerts/webhook",
        token=TOKEN,
        route_overrides={"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"},
    )
    prom_config = render_prometheus_config(
        dest_dir=tmp_path / "prometheus",
        targets={"clearway-temporal-worker": f"127.0.0.1:{exporter_port}"},
        alertmanager=f"127.0.0.1:{am_port}",
        interval="1s",
        rule_files=[str(RULES_GLOB)],
    )
    procs = []
    try:
        procs.append(
            services.start_alertmanager(
                port=am_port,
                config_file=am_config,
                data_dir=tmp_path / "am-data",
                log_dir=TEST_LOG_DIR,
            )
        )
        procs.append(
            services.start_prometheus(
                port=prom_port,
                config_file=prom_config,
                data_dir=tmp_path / "prom-data",
                log_dir=TEST_LOG_DIR,
            )
        )
        yield Monitoring(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", imbalance)
    finally:
        for proc in reversed(procs):
            proc.stop()
        server.shutdown()
        thread.join(5)


def ledger_alerts(staff: APIClient, status: str) -> list[dict]:
    alerts = staff.get("/api/v1/alerts", {"status": status, "alertname": "LedgerImbalance"})
    assert alerts.status_code == 200
    return alerts.json()


def scraped(prometheus: str) -> bool:
    query = requests.get(
        f"{prometheus}/api/v1/query", params={"query": "clearway_ledger_imbalance"}, timeout=5
    ).json()
    return bool(query["data"]["result"])


@pytest.mark.django_db(transaction=True)
def test_an_imbalance_travels_prometheus_alertmanager_webhook_api_and_is_resolved(
    monitoring: Monitoring, staff: APIClient
) -> None:
    wait_for(lambda: scraped(monitoring.prometheus), "Prometheus scraping the exporter")
    assert ledger_alerts(staff, "all") == []

    # The ledger goes out of balance: critical, `for: 0`.
    monitoring.imbalance.set(1)
    [first] = wait_for(lambda: ledger_alerts(staff, "active"), "the alert reaching Clearway")
    assert (first["severity"], first["status"]) == ("critical", "firing")
    assert first["labels"]["job"] == "clearway-temporal-worker"
    assert first["runbook_url"] == "docs/OPERATIONS.md#ledgerimbalance"

    # Balanced again: Prometheus resolves it, Alertmanager says so, Clearway records it.
    monitoring.imbalance.set(0)
    [resolved] = wait_for(lambda: ledger_alerts(staff, "resolved"), "the resolution")
    assert (resolved["id"], resolved["status"]) == (first["id"], "resolved")
    assert resolved["ends_at"] is not None and ledger_alerts(staff, "active") == []

    # It fires again (a new episode); an operator resolves it, which silences it.
    monitoring.imbalance.set(2)
    [second] = wait_for(lambda: ledger_alerts(staff, "active"), "the second episode")
    assert second["id"] != first["id"] and second["fingerprint"] == first["fingerprint"]
    response = staff.post(
        f"/api/v1/alerts/{second['id']}/resolve",
        {"note": "asset rebalanced by entry 99", "silence_minutes": 15},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert ledger_alerts(staff, "active") == []

    def suppressed() -> bool:
        alerts = requests.get(f"{monitoring.alertmanager}/api/v2/alerts", timeout=5).json()
        return any(
            a["labels"]["alertname"] == "LedgerImbalance"
            and a["status"]["state"] == "suppressed"
            and response.json()["resolution"]["silence_id"] in a["status"]["silencedBy"]
            for a in alerts
        )

    wait_for(suppressed, "Alertmanager silencing the still-firing alert")
