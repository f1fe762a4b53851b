"""Which vault custody talks to, and the process-wide clients and circuit breakers for it.

The vault comes from settings (VAULT_ADDRESS, VAULT_DEPLOYED_BLOCK, SETTLEMENT_OPERATOR_*) or,
for whatever those leave unset, from the deployment file `make run` writes (var/deployment.json)
when it describes the same vault. Clients are cached per configuration, so a changed setting (a
test pointing at another chain) gets fresh ones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from eth_account import Account as EthAccount
from web3 import Web3

from exchange.chain import Deployment, Vault, connect
from exchange.chain.artifacts import checksum
from exchange.custody.errors import ChainNotConfigured
from exchange.custody.rpc import CircuitBreaker


def setting(name: str, default: Any) -> Any:
    """A custody setting, with its default until it moves into settings.py."""
    return getattr(settings, name, default)


log = logging.getLogger(__name__)


def deployment_file() -> Path:
    default = Path(os.environ.get("CLEARWAY_VAR_DIR", settings.BASE_DIR / "var"))
    return Path(setting("CHAIN_DEPLOYMENT_FILE", default / "deployment.json"))


@dataclass(frozen=True, slots=True)
class ChainConfig:
    rpc_url: str
    vault: str
    from_block: int
    operator: str
    operator_key: str = field(default="", repr=False)


_recorded: dict[Path, tuple[float, Deployment | None]] = {}


def _recorded_deployment() -> Deployment | None:
    """The deployment file's contents, re-read only when the file changes."""
    path = deployment_file()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    cached = _recorded.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        found: Deployment | None = Deployment.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("custody: ignoring unreadable deployment file %s (%s)", path, exc)
        found = None
    _recorded[path] = (mtime, found)
    return found


def chain_config() -> ChainConfig:
    vault = setting("VAULT_ADDRESS", "")
    from_block = setting("VAULT_DEPLOYED_BLOCK", None)
    operator = setting("SETTLEMENT_OPERATOR_ADDRESS", "")
    key = setting("SETTLEMENT_OPERATOR_KEY", "")
    if not vault or from_block is None or not (operator or key):
        recorded = _recorded_deployment()
        if recorded is not None and (not vault or checksum(vault) == recorded.vault):
            vault = vault or recorded.vault
            from_block = recorded.deployed_block if from_block is None else from_block
            operator = operator or recorded.operator
    if key:
        operator = EthAccount.from_key(key).address
    if not vault or not operator:
        raise ChainNotConfigured(
            "set VAULT_ADDRESS and SETTLEMENT_OPERATOR_ADDRESS (or _KEY), or deploy with `make run`"
        )
    return ChainConfig(
        rpc_url=settings.CHAIN_RPC_URL,
        vault=checksum(vault),
        from_block=int(from_block or 0),
        operator=checksum(operator),
        operator_key=key,
    )


@dataclass(frozen=True, slots=True)
class ChainClients:
    config: ChainConfig
    w3: Web3
    vault: Vault
    breaker: CircuitBreaker


_lock = threading.Lock()
_clients: dict[ChainConfig, ChainClients] = {}
_breakers: dict[str, CircuitBreaker] = {}


def endpoint_name(rpc_url: str) -> str:
    """host:port of an RPC URL, without credentials or a path that may hold an API key."""
    parts = urlsplit(rpc_url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


# Each cool-down is drawn from [0.8, 1] x its length: the processes of a fleet that saw the node
# fail together do not all probe it again in the same instant.
RPC_BREAKER_JITTER = 0.2


def breaker_for(rpc_url: str) -> CircuitBreaker:
    threshold = int(setting("RPC_BREAKER_FAILURES", 5))
    cooldown = float(setting("RPC_BREAKER_COOLDOWN_SECONDS", 10))
    name = endpoint_name(rpc_url)
    with _lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(
                name, threshold=threshold, cooldown=cooldown, jitter=RPC_BREAKER_JITTER
            )
        else:
            breaker.configure(threshold=threshold, cooldown=cooldown, jitter=RPC_BREAKER_JITTER)
        return breaker


def clients() -> ChainClients:
    config = chain_config()
    breaker = breaker_for(config.rpc_url)
    with _lock:
        found = _clients.get(config)
        if found is not None:
            return found
        accounts = [EthAccount.from_key(config.operator_key)] if config.operator_key else []
        w3 = connect(
            config.rpc_url, accounts=accounts, timeout=float(setting("CHAIN_RPC_TIMEOUT", 10))
        )
        # The breaker and Temporal's retries do the retrying; web3's own silent retries would
        # only hide an outage from both for seconds per call.
        w3.provider.exception_retry_configuration = None  # type: ignore[attr-defined]
        vault = Vault(
            w3,
            config.vault,
            from_block=config.from_block,
            timeout=float(setting("SETTLEMENT_RECEIPT_TIMEOUT", 60)),
        )
        found = _clients[config] = ChainClients(config, w3, vault, breaker)
        return found


def reset_clients() -> None:
    """Forget cached clients and breakers (tests)."""
    with _lock:
        _clients.clear()
        _breakers.clear()
