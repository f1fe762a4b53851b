"""What the servers expose besides the API: /metrics only to configured addresses, a throttled
admin login, a websocket server that serves no REST or admin, and no tokens in access logs."""

from __future__ import annotations

import ipaddress
import logging
import secrets

import pytest
from channels.testing import HttpCommunicator
from django.test import Client

from exchange.accounts import logredact
from exchange.asgi import application

pytestmark = pytest.mark.django_db


def loopback() -> str:
    host = secrets.randbits(24)
    return f"127.{host >> 16}.{(host >> 8) & 255}.{host & 255}"


def test_metrics_answer_only_configured_addresses(settings) -> None:
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert b"django_http_requests" in Client(REMOTE_ADDR="::1").get("/metrics").content
    for outsider in ("203.0.113.9", "10.1.2.3", "2001:db8::1"):
        response = Client(REMOTE_ADDR=outsider).get("/metrics")
        assert response.status_code == 403
        assert b"django_http" not in response.content

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


def test_admin_login_posts_are_throttled_per_address(settings, django_user_model) -> None:
    settings.ADMIN_LOGIN_BURST = 3
    django_user_model.objects.create_user("ops", password="right-password-1", is_staff=True)
    guesser = Client(REMOTE_ADDR=loopback())
    answers = [
        guesser.post("/admin/login/", {"username": "ops", "password": f"guess-{n}"}).status_code
        for n in range(5)
    ]
    assert answers[:3] == [200, 200, 200]  # the form again, with its error
    assert answers[3:] == [429, 429]
    late = guesser.post("/admin/login/", {"username": "ops", "password": "right-password-1"})
    assert late.status_code == 429 and int(late["Retry-After"]) >= 1

    # Another address is not affected, and the throttle lets a right password in.
    other = Client(REMOTE_ADDR=loopback())
    ok = other.post(
        "/admin/login/?next=/admin/", {"username": "ops", "password": "right-password-1"}
    )
    assert (ok.status_code, ok["Location"]) == (302, "/admin/")
    assert other.get("/admin/login/").status_code in (200, 302)


async def http_get(path: str) -> tuple[int, bytes]:
    communicator = HttpCommunicator(application, "GET", path, headers=[(b"host", b"localhost")])
    response = await communicator.get_response(timeout=10)
    return response["status"], response["body"]


@pytest.mark.parametrize("path", ["/api/v1/markets", "/admin/login/", "/metrics", "/api/schema/"])
async def test_the_websocket_server_serves_no_rest_admin_or_metrics(path) -> None:
    status, body = await http_get(path)
    assert status == 404
    assert b'"code": "not_found"' in body


async def test_the_websocket_server_still_answers_liveness() -> None:
    status, body = await http_get("/healthz")
    assert (status, body) == (200, b'{"status": "ok"}')


def test_tokens_in_websocket_urls_stay_out_of_the_server_logs(caplog) -> None:
    # What uvicorn logs for a handshake and a request (uvicorn.protocols.*), with the filter
    # exchange.asgi installs on import.
    logredact.install()
    caplog.set_level(logging.INFO)
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/v1/user?token=cw_SECRET1"
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/x?a=1&token=cw_SECRET2&b=2", "1.1",
        200,
    )  # fmt: skip
    assert "SECRET" not in caplog.text
    assert "/ws/v1/user?token=[redacted]" in caplog.text
    assert "/x?a=1&token=[redacted]&b=2" in caplog.text


def test_importing_the_asgi_application_installs_the_redaction() -> None:
    for name in logredact.SERVER_LOGGERS:
        filters = logging.getLogger(name).filters
        assert any(isinstance(f, logredact.RedactTokens) for f in filters), name
