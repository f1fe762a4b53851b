"""Deploying the contract stack, and reusing a deployment recorded in a JSON file.

The stack is one ClearwayVault plus a freely mintable TestToken per configured asset, each
allowlisted in the vault. That suits dev chains (anvil); a real chain would allowlist real tokens.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from exchange.chain.artifacts import checksum, contract_at, load_artifact
from exchange.chain.tx import RECEIPT_TIMEOUT, TxResult, connect, send, tx_result
from exchange.chain.vault import Vault

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class TokenSpec:
    symbol: str
    name: str
    decimals: int


# The demo assets (see exchange/markets/management/commands/bootstrap_demo.py).
DEFAULT_TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("WETH", "Wrapped Ether", 18),
    TokenSpec("USDC", "USD Coin", 6),
)


@dataclass(frozen=True, slots=True)
class Deployment:
    chain_id: int
    vault: ChecksumAddress
    tokens: dict[str, ChecksumAddress]  # symbol -> TestToken address
    admin: ChecksumAddress
    operator: ChecksumAddress
    fee_account: ChecksumAddress
    deployed_block: int  # where log scans (deposits, settlements) can start
    vault_source_hash: str  # contracts/build sourceHash of the deployed vault
    token_decimals: dict[str, int] = field(default_factory=dict)

    def vault_client(self, w3: Web3, *, timeout: float = RECEIPT_TIMEOUT) -> Vault:
        return Vault(w3, self.vault, from_block=self.deployed_block, timeout=timeout)

    def token(self, w3: Web3, symbol: str) -> Contract:
        return contract_at(w3, "TestToken", self.tokens[symbol])

    def describe(self) -> str:
        tokens = ", ".join(f"{symbol} {address}" for symbol, address in self.tokens.items())
        return (
            f"vault {self.vault} on chain {self.chain_id} (block {self.deployed_block}); "
            f"tokens {tokens}; operator {self.operator}; fee account {self.fee_account}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown deployment file format {data.get('format')!r}")
        return cls(
            chain_id=int(data["chain_id"]),
            vault=checksum(data["vault"]),
            tokens={symbol: checksum(address) for symbol, address in data["tokens"].items()},
            admin=checksum(data["admin"]),
            operator=checksum(data["operator"]),
            fee_account=checksum(data["fee_account"]),
            deployed_block=int(data["deployed_block"]),
            vault_source_hash=str(data["vault_source_hash"]),
            token_decimals={k: int(v) for k, v in data.get("token_decimals", {}).items()},
        )


def deploy_contract(
    w3: Web3, name: str, *args: Any, sender: str, timeout: float = RECEIPT_TIMEOUT
) -> tuple[Contract, TxResult]:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx_hash = factory.constructor(*args).transact({"from": checksum(sender)})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise RuntimeError(f"deploying {name} failed in {tx_hash.hex()}")
    return contract_at(w3, name, receipt["contractAddress"]), tx_result(receipt)


def deploy_stack(
    w3: Web3,
    *,
    admin: str,
    operator: str,
    fee_account: str,
    tokens: Sequence[TokenSpec] = DEFAULT_TOKENS,
    timeout: float = RECEIPT_TIMEOUT,
) -> Deployment:
    """Deploy a vault (admin deploys it and allowlists the tokens) and one TestToken per spec.

    ``admin`` must be able to send transactions: an unlocked dev-node account or a local key
    registered with :func:`exchange.chain.tx.connect`.
    """
    vault, deployed = deploy_contract(
        w3,
        "ClearwayVault",
        checksum(admin),
        checksum(operator),
        checksum(fee_account),
        sender=admin,
        timeout=timeout,
    )
    addresses: dict[str, ChecksumAddress] = {}
    for spec in tokens:
        token, _ = deploy_contract(
            w3, "TestToken", spec.name, spec.symbol, spec.decimals, sender=admin, timeout=timeout
        )
        send(w3, vault.functions.allowToken(token.address), sender=admin, timeout=timeout)
        addresses[spec.symbol] = checksum(token.address)
    return Deployment(
        chain_id=w3.eth.chain_id,
        vault=checksum(vault.address),
        tokens=addresses,
        admin=checksum(admin),
        operator=checksum(operator),
        fee_account=checksum(fee_account),
        deployed_block=deployed.block_number,
        vault_source_hash=load_artifact("ClearwayVault").source_hash,
        token_decimals={spec.symbol: spec.decimals for spec in tokens},
    )


def _reusable(w3: Web3, recorded: Deployment, wanted: dict[str, Any]) -> str | None:
    """Why ``recorded`` cannot serve the wanted deployment, or None if it can."""
    if recorded.chain_id != w3.eth.chain_id:
        return f"it is for chain {recorded.chain_id}, not {w3.eth.chain_id}"
    for key, value in wanted.items():
        if getattr(recorded, key) != value:
            return f"its {key} is {getattr(recorded, key)}, not {value}"
    # Comparing runtime code (the vault has no immutables) also catches a vault built from older
    # sources, whose ABI may no longer match the artifact.
    code = bytes(w3.eth.get_code(recorded.vault))
    if code != bytes.fromhex(load_artifact("ClearwayVault").deployed_bytecode[2:]):
        return "the vault's code is missing or from another build"
    for symbol, address in recorded.tokens.items():
        if not w3.eth.get_code(address):
            return f"token {symbol} has no code at {address}"
    return None


def ensure_deployment(
    w3: Web3,
    path: Path,
    *,
    admin: str,
    operator: str,
    fee_account: str,
    tokens: Sequence[TokenSpec] = DEFAULT_TOKENS,
    timeout: float = RECEIPT_TIMEOUT,
) -> Deployment:
    """The deployment recorded at ``path`` if it still stands on this chain, else a new one.

    "Still stands" means: same chain id, same admin, operator, fee account and token specs, the
    vault's code is exactly the current build's, and every token has code. Otherwise (no file, a
    reset or reorged dev chain, changed contracts or roles) it deploys anew and rewrites ``path``
    atomically.
    """
    wanted = {
        "admin": checksum(admin),
        "operator": checksum(operator),
        "fee_account": checksum(fee_account),
        "token_decimals": {spec.symbol: spec.decimals for spec in tokens},
    }
    if path.exists():
        try:
            recorded = Deployment.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("chain: ignoring unreadable deployment file %s (%s)", path, exc)
        else:
            reason = _reusable(w3, recorded, wanted)
            if reason is None:
                log.info("chain: reusing the vault at %s from %s", recorded.vault, path)
                return recorded
            log.info("chain: not reusing the deployment in %s: %s", path, reason)
    deployment = deploy_stack(
        w3, admin=admin, operator=operator, fee_account=fee_account, tokens=tokens, timeout=timeout
    )
    _write_atomically(path, json.dumps(deployment.to_json(), indent=2) + "\n")
    log.info("chain: deployed the vault at %s, recorded in %s", deployment.vault, path)
    return deployment


def ensure_local_deployment(
    rpc_url: str,
    path: Path,
    *,
    admin: str | None = None,
    operator: str | None = None,
    fee_account: str | None = None,
    tokens: Sequence[TokenSpec] = DEFAULT_TOKENS,
) -> Deployment:
    """ensure_deployment on a dev node, with its unlocked accounts as the roles by default.

    Admin, operator and fee account default to the node's first three accounts (anvil's
    well-known dev accounts), which it signs for, so nothing needs a private key.
    """
    w3 = connect(rpc_url)
    unlocked = w3.eth.accounts
    if len(unlocked) < 3 and None in (admin, operator, fee_account):
        raise RuntimeError(f"the node at {rpc_url} has no unlocked dev accounts to use as roles")
    return ensure_deployment(
        w3,
        path,
        admin=admin or unlocked[0],
        operator=operator or unlocked[1],
        fee_account=fee_account or unlocked[2],
        tokens=tokens,
    )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def mint_test_tokens(
    w3: Web3, token: str, to: str, amount: int, *, sender: str, timeout: float = RECEIPT_TIMEOUT
) -> TxResult:
    """Mint a TestToken (anyone may: it is a dev-chain faucet)."""
    erc20 = contract_at(w3, "TestToken", token)
    return send(w3, erc20.functions.mint(checksum(to), amount), sender=sender, timeout=timeout)
