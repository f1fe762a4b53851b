"""`python -m tests.workflows.worker_proc`: workers.temporal's serve(), with extra settings from
CLEARWAY_TEST_SETTINGS (JSON) for the settings that settings.py does not read from the
environment yet. The crash test runs this as a process to SIGKILL it."""

from __future__ import annotations

import asyncio
import json
import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    import django

    django.setup()
    from django.conf import settings

    for name, value in json.loads(os.environ.get("CLEARWAY_TEST_SETTINGS", "{}")).items():
        setattr(settings, name, value)
    from workers.temporal import serve

    asyncio.run(serve())


if __name__ == "__main__":
    main()
