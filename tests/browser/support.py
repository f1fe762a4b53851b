"""Browser-test helpers: Debian's chromium driven by playwright against a real gunicorn.

Nothing here downloads a browser: playwright only drives ``/usr/bin/chromium`` (installed by
`make deps`), so `playwright install` is never needed. Pages are served by gunicorn running the
project with the production static-files set-up (WhiteNoise over `collectstatic`'s output), the
way `make run` and a deployment serve them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.sync_api import ConsoleMessage, Page, Request, Response

from exchange.devstack.procs import REPO, VAR, ManagedProcess, free_port, port_open, wait_until

CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: no GPU, no QUIC, and none of the background fetches (updates, sync,
# component downloads) a fresh profile would otherwise start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait in a browser test is bounded by these (milliseconds).
LAUNCH_TIMEOUT_MS = 60_000
WAIT_MS = 20_000
NAVIGATION_MS = 30_000

ARTIFACTS = REPO / "var" / "artifacts" / "browser"
LOG_DIR = VAR / "log" / "tests"
BIN = Path(sys.executable).parent


def chromium_missing_reason() -> str | None:
    if CHROMIUM.exists():
        return None
    return f"{CHROMIUM} is missing: run `make deps` as root (it installs Debian's chromium)"


@dataclass
class ConsoleLog:
    """What a page reported as broken: console errors, uncaught exceptions, error responses
    and failed requests. Empty means the page ran clean and every asset it asked for arrived."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_request_failed)

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def _on_request_failed(self, request: Request) -> None:
        # A navigation cancels what the previous page still had in flight: not a defect.
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(
                f"request failed: {request.method} {request.url} ({request.failure})"
            )

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location.get("url", "")
            self.errors.append(f"console: {message.text} [{location}]")


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under var/artifacts/browser/ (gitignored; CI may keep them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.png"
    page.screenshot(path=str(path), full_page=True, timeout=WAIT_MS)
    return path


def computed_style(page: Page, selector: str, prop: str) -> str:
    element = page.locator(selector).first
    element.wait_for(state="visible", timeout=WAIT_MS)
    return element.evaluate("(el, prop) => getComputedStyle(el).getPropertyValue(prop)", prop)


def admin_login(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the admin's own login form, as an operator does."""
    page.goto(f"{base_url}/admin/login/?next=/admin/", timeout=NAVIGATION_MS)
    page.fill("#id_username", username, timeout=WAIT_MS)
    page.fill("#id_password", password, timeout=WAIT_MS)
    with page.expect_navigation(timeout=NAVIGATION_MS):
        page.click("input[type=submit]", timeout=WAIT_MS)
    if urlsplit(page.url).path == "/admin/login/":
        raise AssertionError(f"admin sign-in as {username!r} failed: still at {page.url}")


# ------------------------------------------------------------------------------- the server
def database_url(settings_dict: dict) -> str:
    """The URL of a Django connection's database (the test database, in tests)."""
    db = settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'] or '')}@" if db["USER"] else ""
    return f"postgres://{credentials}{db['HOST']}:{db['PORT']}/{quote(db['NAME'])}"


def app_env(
    *, static_root: Path, debug: bool, database: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of an app process served like `make run` serves it.

    CLEARWAY_ENV=dev as under `make run`; with debug off it also takes production's static-file
    path (content-hashed names from collectstatic's manifest, served from STATIC_ROOT)."""
    env = {
        "CLEARWAY_ENV": "dev",
        "DEBUG": "true" if debug else "false",
        "STATIC_ROOT": str(static_root),
        "DJANGO_SETTINGS_MODULE": "exchange.settings",
        **extra,
    }
    if database is not None:
        env["DATABASE_URL"] = database
    return env


def collectstatic(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=REPO,
        env={**os.environ, **env},
        check=True,
        timeout=300,
    )


@contextmanager
def gunicorn(env: dict[str, str], *, name: str = "browser-gunicorn") -> Iterator[str]:
    """A gunicorn serving the project (as `make run` starts it); yields its base URL."""
    port = free_port()
    proc = ManagedProcess.start(
        f"{name}-{port}",
        [str(BIN / "gunicorn"), "exchange.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
         "--access-logfile", "-"],
        log_dir=LOG_DIR,
        env=env,
    )  # fmt: skip
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=60, what="gunicorn", proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def unloaded_stylesheets(page: Page) -> list[str]:
    """Stylesheets the page links but the browser could not apply (missing, or not CSS)."""
    # Chromium refuses to read the rules of a sheet that failed to load (SecurityError).
    return page.evaluate(
        """() => [...document.querySelectorAll('link[rel=stylesheet]')]
                 .filter(link => {
                     try { return !link.sheet || link.sheet.cssRules.length === 0; }
                     catch (error) { return true; }
                 })
                 .map(link => link.href)"""
    )
