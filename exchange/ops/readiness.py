"""Dependency checks behind ``/readyz``: PostgreSQL, Redis, Temporal and the chain.

Each check opens its own short-lived connection with a timeout, so a hung dependency makes the
check fail fast instead of hanging the probe; the checks run in parallel, so the probe takes as
long as the slowest one, not the sum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psycopg
import redis
import requests
from django.conf import settings
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: int
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"ok": self.ok, "latency_ms": self.latency_ms}
        if self.error:
            body["error"] = self.error
        return body


def check_postgres(timeout: int) -> None:
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        connect_timeout=timeout,
    ) as conn:
        conn.execute("SELECT 1")


def check_redis(timeout: int) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_temporal(timeout: int) -> None:
    async def probe() -> None:
        client = await Client.connect(
            settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE
        )
        # Describing the namespace proves both the frontend and our namespace are usable.
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.TEMPORAL_NAMESPACE)
        )

    asyncio.run(asyncio.wait_for(probe(), timeout))


def check_chain(timeout: int) -> None:
    response = requests.post(
        settings.CHAIN_RPC_URL,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        timeout=timeout,
    )
    response.raise_for_status()
    chain_id = int(response.json()["result"], 16)
    if chain_id != settings.CHAIN_ID:
        raise RuntimeError(f"chain id {chain_id} does not match CHAIN_ID={settings.CHAIN_ID}")


CHECKS: dict[str, Callable[[int], None]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "temporal": check_temporal,
    "chain": check_chain,
}


def _run(name: str, check: Callable[[int], None], timeout: int) -> CheckResult:
    started = time.monotonic()
    try:
        check(timeout)
    except Exception as exc:  # any failure means "not ready"; the message says which
        error = f"{type(exc).__name__}: {exc}".strip()[:300]
        return CheckResult(name, False, int((time.monotonic() - started) * 1000), error)
    return CheckResult(name, True, int((time.monotonic() - started) * 1000))


def run_checks() -> list[CheckResult]:
    timeout = settings.READINESS_TIMEOUT
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = [pool.submit(_run, name, check, timeout) for name, check in CHECKS.items()]
        return [future.result() for future in futures]
