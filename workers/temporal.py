"""The Temporal worker: `python -m workers.temporal`.

Wiring only: set up Django, connect to Temporal, serve the custody workflows and activities on
TEMPORAL_TASK_QUEUE (sync activities on a thread pool), along with the other flows' packages
(withdrawals), make sure the long-running settlement scheduler and chain watcher are running,
and export Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Worker

from workflows.chain import activities as chain_activities
from workflows.chain import types as chain_types
from workflows.chain.workflows import ChainWatcher
from workflows.settlement import activities as settlement_activities
from workflows.settlement import types as settlement_types
from workflows.settlement.workflows import BatchSettlement, SettlementScheduler

log = logging.getLogger("workers.temporal")

# Flows that live in their own package and export WORKFLOWS and ACTIVITIES.
OTHER_FLOWS = ("workflows.withdrawals",)


def _other_flows() -> tuple[list[type], list[Any]]:
    workflows: list[type] = []
    activities: list[Any] = []
    for package in OTHER_FLOWS:
        try:
            module = importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise
            log.warning("temporal: %s is not installed; not serving it", package)
            continue
        workflows += module.WORKFLOWS
        activities += module.ACTIVITIES
    return workflows, activities


_workflows, _activities = _other_flows()
WORKFLOWS: Sequence[type] = (SettlementScheduler, BatchSettlement, ChainWatcher, *_workflows)
ACTIVITIES: Sequence[Any] = (
    *settlement_activities.ACTIVITIES,
    *chain_activities.ACTIVITIES,
    *_activities,
)


def _setting(name: str, default: Any) -> Any:
    from django.conf import settings

    return getattr(settings, name, default)


def build_worker(client: Client, executor: Executor, *, task_queue: str | None = None) -> Worker:
    threads = int(_setting("TEMPORAL_ACTIVITY_THREADS", 8))
    return Worker(
        client,
        task_queue=task_queue or _setting("TEMPORAL_TASK_QUEUE", "clearway"),
        workflows=list(WORKFLOWS),
        activities=list(ACTIVITIES),
        activity_executor=executor,
        max_concurrent_activities=threads,
        # A worker that died holds its sticky workflow tasks until this passes.
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=float(_setting("TEMPORAL_STICKY_TIMEOUT_SECONDS", 5))
        ),
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


async def ensure_workflows(client: Client, *, task_queue: str | None = None) -> None:
    """Start the scheduler and the chain watcher under their fixed ids, unless running."""
    queue = task_queue or _setting("TEMPORAL_TASK_QUEUE", "clearway")
    prefix = _setting("TEMPORAL_WORKFLOW_ID_PREFIX", "")
    poll = float(_setting("CHAIN_POLL_SECONDS", 1))
    singletons = (
        (
            settlement_types.SCHEDULER_WORKFLOW,
            settlement_types.SchedulerInput(poll_seconds=poll, id_prefix=prefix),
            prefix + settlement_types.SCHEDULER_ID,
        ),
        (
            chain_types.WATCHER_WORKFLOW,
            chain_types.WatcherInput(poll_seconds=poll),
            prefix + chain_types.WATCHER_ID,
        ),
    )
    for name, data, workflow_id in singletons:
        try:
            await client.start_workflow(name, data, id=workflow_id, task_queue=queue)
            log.info("temporal: started %s (%s)", workflow_id, name)
        except WorkflowAlreadyStartedError:
            log.info("temporal: %s is already running", workflow_id)


RESUME_EVERY_SECONDS = 30


async def resume_withdrawals(stop: asyncio.Event) -> None:
    """Start the workflows of withdrawals requested or decided while Temporal was unreachable:
    at start-up, then every RESUME_EVERY_SECONDS while the worker runs."""
    from django.db import close_old_connections

    from exchange.withdrawals.temporal import withdrawals_resume

    def resume_once() -> tuple[int, int]:
        try:
            return withdrawals_resume()
        finally:
            close_old_connections()

    while not stop.is_set():
        try:
            started, failed = await asyncio.to_thread(resume_once)
            if started or failed:
                log.info("temporal: resumed %d withdrawal workflows (%d failed)", started, failed)
        except Exception:
            log.exception("temporal: resuming withdrawal workflows failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=RESUME_EVERY_SECONDS)


async def sample_ops_gauges(stop: asyncio.Event) -> None:
    """The database-sampled gauges (exchange.ops.gauges): queues every OPS_SAMPLE_SECONDS, the
    ledger check and the vault reconciliation every LEDGER_CHECK_SECONDS (0: never)."""
    from django.db import close_old_connections

    from exchange.ops import gauges

    every = float(_setting("OPS_SAMPLE_SECONDS", 15))
    ledger_every = float(_setting("LEDGER_CHECK_SECONDS", 300))
    loop = asyncio.get_running_loop()
    ledger_due = loop.time()

    def run(job: Any) -> None:
        try:
            job()
        finally:
            close_old_connections()

    while not stop.is_set():
        try:
            await asyncio.to_thread(run, gauges.sample_queues)
            if ledger_every and loop.time() >= ledger_due:
                ledger_due = loop.time() + ledger_every
                await asyncio.to_thread(run, gauges.run_ledger_checks)
        except Exception:
            log.exception("temporal: sampling the ops gauges failed; will retry")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def serve() -> None:
    from django.conf import settings
    from prometheus_client import start_http_server

    port = int(_setting("TEMPORAL_METRICS_PORT", 9464))
    if port:
        try:
            start_http_server(port, addr=_setting("TEMPORAL_METRICS_ADDR", "127.0.0.1"))
        except OSError as exc:  # settling matters more than exporting metrics about it
            log.error("temporal: cannot serve metrics on port %s: %s", port, exc)
    client = await Client.connect(settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    threads = int(_setting("TEMPORAL_ACTIVITY_THREADS", 8))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity") as executor:
        worker = build_worker(client, executor)
        async with worker:
            await ensure_workflows(client)
            log.info(
                "temporal: worker on %s/%s queue %s, metrics on :%s",
                settings.TEMPORAL_ADDRESS,
                settings.TEMPORAL_NAMESPACE,
                worker.task_queue,
                port,
            )
            resumer = asyncio.create_task(resume_withdrawals(stop))
            sampler = asyncio.create_task(sample_ops_gauges(stop))
            await stop.wait()
            log.info("temporal: shutting down")
            await resumer
            await sampler


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    from exchange.envvars import exit_on_config_error

    with exit_on_config_error():
        django.setup()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
