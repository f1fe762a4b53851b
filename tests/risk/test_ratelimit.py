"""rate_limit_order: per-account token buckets in Redis, shared by every process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.db import connection
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from exchange.accounts.authentication import BearerTokenAuthentication
from exchange.accounts.permissions import IsTrader
from exchange.accounts.services import token_create
from exchange.devstack.procs import ManagedProcess, free_port, port_open, wait_until
from exchange.errors import RateLimited
from exchange.markets.models import Market
from exchange.risk.services import rate_limit_order, risk_override_set
from tests.support import TEST_LOG_DIR
from tests.waiting import LineReader

ROOT = Path(__file__).resolve().parents[2]


def drain(account, market, *, attempts: int = 1000) -> tuple[int, RateLimited | None, float]:  # type: ignore[no-untyped-def]
    """Call until refused: (allowed before the refusal, the refusal, seconds spent)."""
    allowed = 0
    started = time.monotonic()
    for _ in range(attempts):
        try:
            rate_limit_order(account=account, market=market)
        except RateLimited as refusal:
            return allowed, refusal, time.monotonic() - started
        allowed += 1
    return allowed, None, time.monotonic() - started


@pytest.mark.django_db
def test_default_bucket_is_10_per_second_burst_20(market: Market, trader) -> None:
    decision = rate_limit_order(account=trader, market=market)
    assert (decision.allowed, decision.limit, decision.remaining) == (True, 20, 19)
    assert decision.headers() == {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "19"}
    # The whole burst is there at once.
    for _ in range(19):
        assert rate_limit_order(account=trader, market=market).allowed


@pytest.mark.django_db
def test_burst_then_rate_limited_with_retry_after(market: Market, make_trader) -> None:
    trader, other = make_trader(), make_trader()
    risk_override_set(
        account=trader, market=market, limits={"rate_limit_per_second": 1, "rate_limit_burst": 3}
    )
    allowed, refusal, elapsed = drain(trader, market)
    assert refusal is not None
    assert 3 <= allowed <= 3 + math.floor(1 * elapsed)
    assert (refusal.status_code, refusal.code) == (429, "rate_limited")
    # One token refills in at most a second at 1/s.
    assert refusal.extra == {"retry_after": 1, "limit": 3, "remaining": 0}
    # Another account's bucket is untouched.
    assert rate_limit_order(account=other, market=market).remaining == 19


class _OrderLikeApi(APIView):
    """What the order API does: rate limit first, then copy the decision's headers."""

    authentication_classes = (BearerTokenAuthentication,)
    permission_classes = (IsTrader,)

    def post(self, request, symbol: str) -> Response:  # type: ignore[no-untyped-def]
        market = Market.objects.select_related("base", "quote").get(symbol=symbol)
        decision = rate_limit_order(account=request.user, market=market)
        return Response({"ok": True}, headers=decision.headers())


@pytest.mark.django_db
def test_http_answers_carry_rate_limit_headers(market: Market, trader) -> None:
    risk_override_set(
        account=trader, market=market, limits={"rate_limit_per_second": 1, "rate_limit_burst": 2}
    )
    view = _OrderLikeApi.as_view()

    def post():  # type: ignore[no-untyped-def]
        request = APIRequestFactory().post("/", {}, format="json")
        force_authenticate(request, user=trader, token=object())
        response = view(request, symbol=market.symbol)
        response.render()
        return response

    first = post()
    assert first.status_code == 200
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"]) == ("2", "1")
    responses = [post() for _ in range(100)]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused["Retry-After"] == "1"
    body = json.loads(refused.content)
    assert body["code"] == "rate_limited"
    assert body["extra"] == {"retry_after": 1, "limit": 2, "remaining": 0}


@pytest.mark.django_db
def test_the_order_api_rate_limits_before_anything_else(market: Market, trader) -> None:
    risk_override_set(
        account=trader, market=market, limits={"rate_limit_per_second": 1, "rate_limit_burst": 2}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_create(account=trader).token}")
    body = {
        "market": market.symbol,
        "side": "buy",
        "type": "limit",
        "price": "2000",
        "quantity": "1",
        "client_order_id": "rl",
        "nonce": 1,
        "expiry": 2**40,
        "signature": "0x" + "11" * 65,
    }
    statuses = []
    for _ in range(100):
        response = client.post("/api/v1/orders", body, format="json")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert 429 not in statuses[:2]  # the burst reaches the order service (which refuses it)
    assert response["Retry-After"] == "1"
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["X-RateLimit-Limit"] == response.json()["extra"]["limit"].__str__()
    assert response.json()["code"] == "rate_limited"


def _database_url() -> str:
    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@" if db["USER"] else ""
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


@pytest.mark.django_db(transaction=True)
def test_the_bucket_holds_across_processes(market: Market, trader) -> None:
    burst, rate, attempts = 10, 1, 40
    risk_override_set(
        account=trader,
        market=market,
        limits={"rate_limit_per_second": rate, "rate_limit_burst": burst},
    )
    env = {**os.environ, "DATABASE_URL": _database_url()}
    command = [
        sys.executable,
        "-m",
        "tests.risk.ratelimit_worker",
        trader.address,
        market.symbol,
        str(attempts),
    ]
    workers = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in range(2)
    ]
    readers = [LineReader(worker.stdout) for worker in workers]
    try:
        for reader in readers:
            assert reader.until("ready", timeout=60).strip() == "ready"
        started = time.monotonic()
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [json.loads(reader.until("allowed", timeout=60)) for reader in readers]
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stdin.close()
            worker.wait(timeout=60)
    assert [r["allowed"] + r["refused"] for r in results] == [attempts, attempts]
    allowed = sum(r["allowed"] for r in results)
    # One shared bucket: the burst plus what refilled while both spent it, however the calls
    # interleaved. Two private buckets would have allowed 2 x burst.
    assert burst <= allowed <= burst + math.floor(rate * elapsed)


@pytest.mark.django_db(transaction=True)
def test_the_bucket_holds_across_two_api_server_processes(market: Market, trader) -> None:
    # Two gunicorn servers, as a deployment runs several: an account alternating between them
    # gets one bucket's worth of orders through, not one per server.
    burst, rate, attempts = 10, 1, 60
    risk_override_set(
        account=trader,
        market=market,
        limits={"rate_limit_per_second": rate, "rate_limit_burst": burst},
    )
    token = token_create(account=trader).token
    env = {**os.environ, "DATABASE_URL": _database_url(), "VAULT_ADDRESS": "0x" + "5a" * 20}
    ports = [free_port(), free_port()]
    servers = [
        ManagedProcess.start(
            f"gunicorn-ratelimit-{port}",
            [str(Path(sys.executable).parent / "gunicorn"), "exchange.wsgi", "-w", "1",
             "-b", f"127.0.0.1:{port}"],
            log_dir=TEST_LOG_DIR,
            env=env,
        )
        for port in ports
    ]  # fmt: skip
    try:
        for server, port in zip(servers, ports, strict=True):
            wait_until(lambda p=port: port_open("127.0.0.1", p), timeout=60, what="gunicorn",
                       proc=server)  # fmt: skip
        body = {
            "market": market.symbol, "side": "buy", "type": "limit", "price": "2000",
            "quantity": "1", "client_order_id": "rl", "nonce": 1, "expiry": 2**40,
            "signature": "0x" + "11" * 65,
        }  # fmt: skip
        statuses: dict[int, list[int]] = {port: [] for port in ports}
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            started = time.monotonic()
            for attempt in range(attempts):
                port = ports[attempt % 2]
                answer = session.post(f"http://127.0.0.1:{port}/api/v1/orders", json=body)
                statuses[port].append(answer.status_code)
            elapsed = time.monotonic() - started
    finally:
        for server in servers:
            server.stop()
    # Past the rate limit, the order service refuses the made-up signature: anything but 429
    # spent a token.
    allowed = sum(status != 429 for answers in statuses.values() for status in answers)
    assert all(429 in answers for answers in statuses.values()), statuses
    assert burst <= allowed <= burst + math.floor(rate * elapsed), (allowed, elapsed)
