"""Browser fixtures: `browser` (one headless Debian chromium per session), `page` (a fresh
context per test, its console watched), `app_server` (a real gunicorn over the test database,
static files collected as in production) and `operator` (a superuser the server can see).

Later pages (ops dashboard, trader page) reuse these; see support.py for the helpers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser import support


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped, not session-scoped: playwright's sync API marks an asyncio loop as running
    in this thread for as long as it lives, which would break every later async test and ORM
    call in the session. While it lives, Django must allow the (synchronous) ORM calls the
    fixtures make, hence DJANGO_ALLOW_ASYNC_UNSAFE, set for this package only."""
    missing = support.chromium_missing_reason()
    if missing:
        pytest.fail(missing)
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=str(support.CHROMIUM),
            args=support.CHROMIUM_ARGS,
            headless=True,
            timeout=support.LAUNCH_TIMEOUT_MS,
        )
        yield chromium
        chromium.close()


@pytest.fixture
def console() -> support.ConsoleLog:
    """What the test's page reported as broken; a test asserts it is empty."""
    return support.ConsoleLog()


CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def page(
    browser: Browser, console: support.ConsoleLog, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh context (no cookies shared between tests), every wait bounded by default; a
    failed test leaves a screenshot of where it stopped."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(support.WAIT_MS)
    context.set_default_navigation_timeout(support.NAVIGATION_MS)
    page = context.new_page()
    console.watch(page)
    try:
        yield page
        if request.node.stash.get(CALL_FAILED, False):
            support.screenshot(page, f"FAILED-{request.node.name}")
    finally:
        context.close()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """collectstatic's output, as `make run` and a deployment produce it (once per session)."""
    root = tmp_path_factory.mktemp("static")
    support.collectstatic(support.app_env(static_root=root, debug=False))
    return root


@pytest.fixture(scope="package")
def app_server(django_db_setup, static_root: Path) -> Iterator[str]:
    """gunicorn serving the project over the test database with production's static files
    (DEBUG off: content-hashed names from the manifest, served by WhiteNoise). Data a test
    wants it to see must be committed: use `transactional_db`."""
    from django.db import connection

    env = support.app_env(
        database=support.database_url(connection.settings_dict),
        static_root=static_root,
        debug=False,
    )
    with support.gunicorn(env) as url:
        yield url


@dataclass(frozen=True)
class Operator:
    username: str
    password: str


@pytest.fixture
def operator(transactional_db) -> Operator:
    from django.contrib.auth import get_user_model

    credentials = Operator(username="operator", password="operator-password-1")
    get_user_model().objects.create_superuser(
        username=credentials.username, password=credentials.password, email=""
    )
    return credentials
