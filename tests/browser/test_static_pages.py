"""The admin console and the API docs in a real browser, served by gunicorn as `make run` and a
deployment serve them: /static/ must answer (WhiteNoise), so the admin is styled and Swagger UI
lists every operation, with nothing broken in the console.

Each test runs against two servers: "prod" (DEBUG off: collectstatic's hashed, compressed files
from STATIC_ROOT) and "dev" (DEBUG on, exactly `make run`'s configuration)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page

from tests.browser import support
from tests.browser.conftest import Operator

# Django admin's light theme: #header is var(--header-bg) = var(--secondary) = #417690.
ADMIN_HEADER_BG = "rgb(65, 118, 144)"
# Swagger UI paints a GET operation's method badge #61affe.
SWAGGER_GET_BADGE_BG = "rgb(97, 175, 254)"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module", params=["prod", "dev"])
def served(request: pytest.FixtureRequest, static_root: Path) -> Iterator[tuple[str, str]]:
    """(mode, base URL) of a gunicorn serving the project."""
    if request.param == "prod":
        yield "prod", request.getfixturevalue("app_server")
        return
    request.getfixturevalue("django_db_setup")
    from django.db import connection

    env = support.app_env(
        database=support.database_url(connection.settings_dict),
        static_root=static_root,
        debug=True,
    )
    with support.gunicorn(env, name="browser-gunicorn-dev") as url:
        yield "dev", url


def test_admin_is_styled_for_a_signed_in_operator(
    served: tuple[str, str], page: Page, console: support.ConsoleLog, operator: Operator
) -> None:
    mode, url = served
    support.admin_login(page, url, operator.username, operator.password)
    page.goto(f"{url}/admin/")
    page.locator("#clearway-links").wait_for(timeout=support.WAIT_MS)
    support.screenshot(page, f"admin-index-{mode}")

    assert support.unloaded_stylesheets(page) == []
    # Unstyled, #header is a transparent block; base.css makes it the admin's blue flex bar.
    assert support.computed_style(page, "#header", "background-color") == ADMIN_HEADER_BG
    assert support.computed_style(page, "#header", "display") == "flex"
    assert page.locator("#site-name").inner_text() == "Clearway admin"
    assert console.errors == []


def test_api_docs_list_every_operation(
    served: tuple[str, str], page: Page, console: support.ConsoleLog
) -> None:
    mode, url = served
    schema = requests.get(f"{url}/api/schema/", params={"format": "json"}, timeout=30).json()
    expected = sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    )
    assert ("POST", "/api/v1/orders") in expected

    page.goto(f"{url}/api/docs/")
    blocks = page.locator(".swagger-ui .opblock")
    blocks.first.wait_for(timeout=support.WAIT_MS)
    page.wait_for_function(
        "n => document.querySelectorAll('.swagger-ui .opblock').length === n",
        arg=len(expected),
        timeout=support.WAIT_MS,
    )
    support.screenshot(page, f"api-docs-{mode}")

    shown = sorted(
        (
            block.locator(".opblock-summary-method").inner_text().strip().upper(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    )
    assert shown == expected
    assert support.unloaded_stylesheets(page) == []
    get_badge = ".swagger-ui .opblock-get .opblock-summary-method"
    assert support.computed_style(page, get_badge, "background-color") == SWAGGER_GET_BADGE_BG
    assert console.errors == []


def test_stylesheets_are_served_by_the_app(served: tuple[str, str]) -> None:
    mode, url = served
    login = requests.get(f"{url}/admin/login/", timeout=30)
    assert login.status_code == 200
    hrefs = re.findall(r'<link rel="stylesheet" href="([^"]+)"', login.text)
    assert any("admin/css/base" in href for href in hrefs), hrefs
    for href in hrefs:
        answer = requests.get(f"{url}{href}", headers={"Accept-Encoding": "gzip"}, timeout=30)
        assert answer.status_code == 200, href
        assert answer.headers["Content-Type"].startswith("text/css"), href
        if mode == "prod":
            # collectstatic's content-hashed name, cacheable forever and served compressed.
            assert re.search(r"\.[0-9a-f]{12}\.css$", href), href
            assert "immutable" in answer.headers["Cache-Control"], href
            assert answer.headers.get("Content-Encoding") == "gzip", href
