from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from exchange.devstack import services
from exchange.devstack.monitoring import render_alertmanager_config
from exchange.devstack.procs import free_port
from tests.support import TEST_LOG_DIR

TOKEN = "test-webhook-token"


@pytest.fixture(scope="session")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager (Debian's), on a free port, for the silences resolutions create."""
    folder = tmp_path_factory.mktemp("alertmanager")
    config = render_alertmanager_config(
        dest_dir=folder, webhook_url="http://127.0.0.1:9/unused", token=TOKEN
    )
    port = free_port()
    proc = services.start_alertmanager(
        port=port, config_file=config, data_dir=folder / "data", log_dir=TEST_LOG_DIR
    )
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture
def alerts_settings(settings, alertmanager_url: str):  # type: ignore[no-untyped-def]
    settings.ALERTMANAGER_URL = alertmanager_url
    settings.ALERTMANAGER_WEBHOOK_TOKEN = TOKEN
    return settings


def user_client(*, is_staff: bool) -> APIClient:
    user = get_user_model().objects.create_user(
        f"user{get_user_model().objects.count()}", password=None, is_staff=is_staff
    )
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def staff() -> APIClient:
    return user_client(is_staff=True)


@pytest.fixture
def alertmanager_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return client
