"""The ops dashboard: a staff page (linked from the admin header) drawing live charts from
Prometheus's query API with uPlot (from npm, served by us). Its data endpoint is staff only and
fails with stable codes; in headless Chromium, against a real Prometheus scraping a small
exporter, every chart shows data and the active alerts are listed (screenshot kept in
var/artifacts/)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from prometheus_client import CollectorRegistry, Gauge, Histogram, start_http_server

from exchange.alerts.models import Alert
from exchange.devstack import services
from exchange.devstack.monitoring import render_prometheus_config
from exchange.devstack.procs import REPO, free_port
from exchange.ops.dashboard import PANELS
from tests.support import TEST_LOG_DIR
from tests.waiting import wait_for

ARTIFACTS = REPO / "var" / "artifacts"
# Starts Prometheus and Chromium: not in make test-fast.
pytestmark = pytest.mark.services

WAIT = 60


def staff_client() -> Client:
    user = get_user_model().objects.create_user(
        f"ops{get_user_model().objects.count()}", password=None, is_staff=True
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_page_is_for_staff_and_linked_from_the_admin_header(settings) -> None:
    anonymous = Client().get("/ops/dashboard")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    staff = staff_client()
    page = staff.get("/ops/dashboard")
    assert page.status_code == 200
    for panel in PANELS:
        assert f'id="panel-{panel.id}"'.encode() in page.content
    assert b"vendor/uplot/uPlot.iife.min.js" in page.content
    assert b'href="/ops/dashboard">Ops dashboard</a>' in staff.get("/admin/").content


@pytest.mark.django_db
def test_the_data_endpoint_answers_stable_errors(settings) -> None:
    body = Client().get("/ops/dashboard/data").json()
    assert body["code"] == "forbidden"
    staff = staff_client()
    for minutes in ("0", "x", "100000"):
        response = staff.get("/ops/dashboard/data", {"minutes": minutes})
        assert (response.status_code, response.json()["code"]) == (400, "validation_error")
    settings.PROMETHEUS_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    response = staff.get("/ops/dashboard/data")
    assert (response.status_code, response.json()["code"]) == (503, "prometheus_unavailable")


class FakeExchange:
    """Every metric the panels read, moving, on an exporter of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.intake = Histogram("clearway_order_intake_seconds", "t", ["outcome"], registry=r)
        self.finality = Histogram("clearway_settlement_latency_seconds", "t", registry=r)
        Gauge("clearway_matching_lag_commands", "t", ["market"], registry=r).labels(
            "WETH-USDC"
        ).set(3)
        Gauge("clearway_settlement_backlog_trades", "t", registry=r).set(12)
        Gauge("clearway_settlement_oldest_unsettled_seconds", "t", registry=r).set(1.5)
        Gauge("clearway_chain_head_block", "t", registry=r).set(120)
        Gauge("clearway_chain_scanned_block", "t", registry=r).set(119)
        Gauge("clearway_withdrawals_awaiting_approval", "t", registry=r).set(2)
        Gauge("clearway_withdrawals_oldest_awaiting_approval_seconds", "t", registry=r).set(600)
        Gauge("clearway_rpc_circuit_state", "t", ["endpoint"], registry=r).labels("anvil").set(0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trade, daemon=True)

    def _trade(self) -> None:
        while not self.stop.wait(0.05):
            self.intake.labels("accepted").observe(0.004)
            self.intake.labels("insufficient_funds").observe(0.002)
            self.finality.observe(2.5)


@pytest.fixture
def prometheus(settings, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    fake = FakeExchange()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=fake.registry)
    fake.thread.start()
    config = render_prometheus_config(
        dest_dir=tmp_path, targets={"clearway-temporal-worker": f"127.0.0.1:{port}"},
        alertmanager="127.0.0.1:9", interval="1s", rule_files=[],
    )  # fmt: skip
    prom_port = free_port()
    proc = services.start_prometheus(
        port=prom_port, config_file=config, data_dir=tmp_path / "data", log_dir=TEST_LOG_DIR
    )
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{prom_port}"
    try:
        yield settings.PROMETHEUS_URL
    finally:
        proc.stop()
        fake.stop.set()
        server.shutdown()
        thread.join(5)


def has_rates(prometheus: str) -> bool:
    query = "rate(clearway_order_intake_seconds_count[1m]) > 0"
    found = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
    return len(found.json()["data"]["result"]) == 2


@pytest.mark.django_db(transaction=True)
def test_every_chart_shows_data_in_headless_chromium(
    prometheus: str, live_server, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    wait_for(lambda: has_rates(prometheus), "Prometheus computing rates")
    Alert.objects.create(
        fingerprint="f00d", alertname="SettlementBacklogOld", severity="critical",
        labels={"alertname": "SettlementBacklogOld"}, status="firing",
        annotations={"summary": "The oldest unsettled trade is 2m old"},
        starts_at="2026-12-05T10:00:00Z",
    )  # fmt: skip
    session = staff_client().cookies["sessionid"].value
    # Playwright's sync API runs an event loop in this thread while it lives: the ORM must be
    # allowed meanwhile (the live server's own threads are not affected).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            timeout=60_000,
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            # Failed loads are reported by URL (the browser's own /favicon.ico guess is not ours).
            page.on(
                "response",
                lambda r: (
                    errors.append(f"HTTP {r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            page.on(
                "console",
                lambda m: (
                    errors.append(m.text)
                    if m.type == "error" and "Failed to load resource" not in m.text
                    else None
                ),
            )
            # The last 5 minutes: 1-second steps, so the seconds Prometheus has are many points.
            page.goto(f"{live_server.url}/ops/dashboard?minutes=5", timeout=30_000)
            page.wait_for_selector("#ops-dashboard[data-loaded='1']", timeout=30_000)
            points = {
                panel.id: int(page.get_attribute(f"#panel-{panel.id}", "data-points") or 0)
                for panel in PANELS
            }
            canvases = page.locator(".ops-panel canvas").count()
            alerts = page.inner_text("#ops-alerts")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "ops-dashboard.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    # Each series has had a value for several scrapes (has_rates waited for two per counter).
    assert [panel for panel, count in points.items() if count < 2] == [], points
    assert canvases >= len(PANELS)
    assert "SettlementBacklogOld" in alerts and "critical" in alerts
