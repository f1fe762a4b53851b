from __future__ import annotations

import uuid

from exchange import ratelimit


def test_burst_then_refusal_with_retry_after() -> None:
    key = f"test-{uuid.uuid4().hex}"
    decisions = [ratelimit.take(key, rate_per_second=0.01, burst=5) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[0].remaining == 4
    refused = decisions[-1]
    assert refused.remaining == 0
    # One token takes 100 s to refill at 0.01/s.
    assert 90 <= refused.retry_after_seconds <= 100
    assert refused.headers()["Retry-After"] == str(refused.retry_after_seconds)
    assert refused.headers()["X-RateLimit-Limit"] == "5"


def test_buckets_are_independent_per_key() -> None:
    first, second = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    assert ratelimit.take(first, rate_per_second=0.01, burst=1).allowed
    assert not ratelimit.take(first, rate_per_second=0.01, burst=1).allowed
    assert ratelimit.take(second, rate_per_second=0.01, burst=1).allowed


def test_tokens_refill_at_the_rate() -> None:
    key = f"test-{uuid.uuid4().hex}"
    # 1000 tokens/s: the bucket is never empty for long, so after draining it a short wait
    # always refills at least one token.
    for _ in range(3):
        ratelimit.take(key, rate_per_second=1000, burst=3)
    import time

    time.sleep(0.05)
    assert ratelimit.take(key, rate_per_second=1000, burst=3).allowed


def test_sign_in_endpoints_are_throttled_per_client_address(settings, db) -> None:
    from rest_framework.test import APIClient

    settings.AUTH_RATE_PER_SECOND = 1
    settings.AUTH_RATE_BURST = 3
    client = APIClient(REMOTE_ADDR=f"198.51.100.{uuid.uuid4().int % 250}")
    statuses = [client.get("/api/v1/auth/nonce").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[-1] == 429
    refused = client.get("/api/v1/auth/nonce")
    assert refused.json()["code"] == "rate_limited"
    assert refused["Retry-After"] == "1"
    assert refused["X-RateLimit-Remaining"] == "0"
    # Another address has its own bucket.
    assert APIClient(REMOTE_ADDR="203.0.113.7").get("/api/v1/auth/nonce").status_code == 200
