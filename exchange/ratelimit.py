"""Per-account token buckets in Redis, atomic across every server process.

The whole read-refill-take step runs as one Lua script on the Redis server, with Redis's clock,
so two gunicorn workers (or two machines) share one bucket and cannot both spend its last token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000000)
local allowed = 0
local wait_us = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_us = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, tostring(tokens), wait_us}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int  # 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def take(key: str, *, rate_per_second: float, burst: int, cost: int = 1) -> Decision:
    """Spend ``cost`` tokens from the bucket ``key`` if it has them."""
    client = _client(settings.REDIS_URL)
    allowed, tokens, wait_us = client.eval(
        _TAKE, 1, f"clearway:ratelimit:{key}", rate_per_second, burst, cost
    )
    return Decision(
        allowed=bool(allowed),
        limit=burst,
        remaining=int(float(tokens)),
        retry_after_seconds=0 if allowed else max(1, math.ceil(int(wait_us) / 1_000_000)),
    )


def throttle_client(request, scope: str) -> Decision:  # type: ignore[no-untyped-def]
    """Per-client-address bucket for unauthenticated endpoints that write (sign-in).

    Raises RateLimited (429, Retry-After and X-RateLimit headers) when the bucket is empty.
    """
    from exchange.errors import RateLimited

    address = request.META.get("REMOTE_ADDR", "unknown")
    decision = take(
        f"{scope}:{address}",
        rate_per_second=settings.AUTH_RATE_PER_SECOND,
        burst=settings.AUTH_RATE_BURST,
    )
    if not decision.allowed:
        error = RateLimited(
            "Too many sign-in requests from this address; retry later.",
            extra={
                "retry_after": decision.retry_after_seconds,
                "limit": decision.limit,
                "remaining": 0,
            },
        )
        error.headers = decision.headers()  # type: ignore[attr-defined]
        raise error
    return decision
