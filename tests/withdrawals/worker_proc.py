"""`python -m tests.withdrawals.worker_proc`: a Temporal worker serving the withdrawal workflow
and activities (what workers.temporal registers from workflows.withdrawals), with extra settings
from CLEARWAY_TEST_SETTINGS (JSON) for those settings.py does not read from the environment. The
crash test runs it as a process to SIGKILL it."""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta


async def serve() -> None:
    from django.conf import settings
    from temporalio.client import Client
    from temporalio.worker import Worker

    from workflows.withdrawals import ACTIVITIES, WORKFLOWS

    client = await Client.connect(settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="activity") as executor:
        worker = Worker(
            client,
            task_queue=settings.TEMPORAL_TASK_QUEUE,
            workflows=list(WORKFLOWS),
            activities=list(ACTIVITIES),
            activity_executor=executor,
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        )
        await worker.run()


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    django.setup()
    from django.conf import settings

    for name, value in json.loads(os.environ.get("CLEARWAY_TEST_SETTINGS", "{}")).items():
        setattr(settings, name, value)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
