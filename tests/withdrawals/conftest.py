from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from temporalio.client import Client

from exchange.accounts.services import trader_get_or_create

from .support import Chain, configure_chain, deploy_chain, make_assets, new_address


@pytest.fixture
def assets(db):  # type: ignore[no-untyped-def]
    """(WETH, USDC) with made-up token addresses: for tests that never reach the chain."""
    return make_assets()


@pytest.fixture
def weth(assets):  # type: ignore[no-untyped-def]
    return assets[0]


@pytest.fixture
def usdc(assets):  # type: ignore[no-untyped-def]
    return assets[1]


@pytest.fixture
def make_trader(db) -> Callable:  # type: ignore[no-untyped-def]
    return lambda: trader_get_or_create(address=new_address())


@pytest.fixture
def trader(make_trader):  # type: ignore[no-untyped-def]
    return make_trader()


@dataclass
class TemporalCalls:
    started: list[str] = field(default_factory=list)
    signals: list[tuple[str, str, str]] = field(default_factory=list)


@pytest.fixture
def temporal_calls(monkeypatch) -> TemporalCalls:  # type: ignore[no-untyped-def]
    """Record workflow starts and signals instead of sending them (unit tests only)."""
    from exchange.withdrawals import temporal

    calls = TemporalCalls()

    def start_workflow(withdrawal) -> bool:  # type: ignore[no-untyped-def]
        calls.started.append(str(withdrawal.id))
        return True

    def signal_decision(withdrawal, signal: str, *, actor: str, note: str = "") -> bool:  # type: ignore[no-untyped-def]
        calls.signals.append((str(withdrawal.id), signal, actor))
        return True

    monkeypatch.setattr(temporal, "start_workflow", start_workflow)
    monkeypatch.setattr(temporal, "signal_decision", signal_decision)
    return calls


@pytest.fixture
def names() -> tuple[str, str]:
    """(task queue, tag), unique to the test."""
    tag = uuid.uuid4().hex[:10]
    return f"withdrawals-{tag}", tag


@dataclass
class Live:
    """Everything real: a fresh vault on anvil, the assets on it, Temporal settings."""

    chain: Chain
    weth: object
    usdc: object
    client: Client
    queue: str
    rpc_url: str


def make_live(settings, anvil, temporal_env, queue: str) -> Live:  # type: ignore[no-untyped-def]
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 10}))
    chain = deploy_chain(w3)
    configure_chain(settings, anvil.rpc_url, chain)
    client = temporal_env.client
    settings.TEMPORAL_ADDRESS = client.service_client.config.target_host
    settings.TEMPORAL_NAMESPACE = client.namespace
    settings.TEMPORAL_TASK_QUEUE = queue
    settings.CONFIRMATION_DEPTH = 1
    settings.WITHDRAWAL_POLL_SECONDS = 0.1
    settings.WITHDRAWAL_HEARTBEAT_TIMEOUT_SECONDS = 2
    weth, usdc = make_assets(chain)
    return Live(
        chain=chain, weth=weth, usdc=usdc, client=client, queue=queue, rpc_url=anvil.rpc_url
    )


@pytest.fixture
def live(transactional_db, settings, anvil, temporal_env, names) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    """A fresh vault on the session's anvil (automining), Temporal and settings pointed at it."""
    from exchange.custody.chain import reset_clients

    yield make_live(settings, anvil, temporal_env, names[0])
    reset_clients()


@pytest.fixture
def private_live(transactional_db, settings, fresh_anvil, temporal_env, names) -> Iterator[Live]:  # type: ignore[no-untyped-def]
    """The same on a private anvil, for tests that stop its mining."""
    from exchange.custody.chain import reset_clients

    yield make_live(settings, fresh_anvil, temporal_env, names[0])
    reset_clients()
