"""ensure_deployment: reuse what still stands on the chain, redeploy anything else."""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from exchange.chain import (
    DEFAULT_TOKENS,
    Deployment,
    ensure_deployment,
    ensure_local_deployment,
    load_artifact,
)


def roles(w3: Web3) -> dict[str, str]:
    admin, operator, fee = w3.eth.accounts[:3]
    return {"admin": admin, "operator": operator, "fee_account": fee}


def test_first_run_deploys_and_records_the_stack(w3: Web3, tmp_path: Path):
    path = tmp_path / "chain" / "deployment.json"

    deployment = ensure_deployment(w3, path, **roles(w3))

    assert Deployment.from_json(json.loads(path.read_text())) == deployment
    assert deployment.chain_id == w3.eth.chain_id
    assert set(deployment.tokens) == {spec.symbol for spec in DEFAULT_TOKENS}
    vault = deployment.vault_client(w3)
    assert vault.fee_account() == roles(w3)["fee_account"]
    for symbol, address in deployment.tokens.items():
        assert vault.is_token_allowed(address)
        token = deployment.token(w3, symbol)
        assert token.functions.symbol().call() == symbol
        assert token.functions.decimals().call() == deployment.token_decimals[symbol]
    operator_role = vault.contract.functions.OPERATOR_ROLE().call()
    assert vault.contract.functions.hasRole(operator_role, roles(w3)["operator"]).call()


def test_a_second_run_reuses_the_recorded_addresses_without_a_transaction(w3: Web3, tmp_path: Path):
    path = tmp_path / "deployment.json"
    first = ensure_deployment(w3, path, **roles(w3))
    block = w3.eth.block_number

    second = ensure_deployment(w3, path, **roles(w3))

    assert second == first
    assert w3.eth.block_number == block  # automining: any transaction would mine a block


def test_other_roles_get_a_new_deployment(w3: Web3, tmp_path: Path):
    path = tmp_path / "deployment.json"
    first = ensure_deployment(w3, path, **roles(w3))

    second = ensure_deployment(w3, path, **{**roles(w3), "operator": w3.eth.accounts[5]})

    assert second.vault != first.vault
    assert second.operator == w3.eth.accounts[5]
    assert json.loads(path.read_text())["vault"] == second.vault


def test_a_vault_from_another_build_is_not_reused(w3: Web3, tmp_path: Path):
    path = tmp_path / "deployment.json"
    first = ensure_deployment(w3, path, **roles(w3))
    data = json.loads(path.read_text())
    data["vault"] = first.tokens["WETH"]  # code exists there, but it is not this vault
    path.write_text(json.dumps(data))

    second = ensure_deployment(w3, path, **roles(w3))

    assert second.vault not in (first.vault, first.tokens["WETH"])
    code = bytes(w3.eth.get_code(second.vault))
    assert code.hex() == load_artifact("ClearwayVault").deployed_bytecode[2:]


def test_a_reset_chain_or_an_unreadable_file_gets_a_new_deployment(
    w3: Web3, fresh_anvil, tmp_path: Path
):
    path = tmp_path / "deployment.json"
    ensure_deployment(w3, path, **roles(w3))
    # Same chain id, empty state: what a restarted dev chain without its state file looks like.
    fresh = Web3(Web3.HTTPProvider(fresh_anvil.rpc_url, request_kwargs={"timeout": 10}))
    assert fresh.eth.block_number == 0

    redeployed = ensure_deployment(fresh, path, **roles(fresh))

    assert fresh.eth.get_code(redeployed.vault)
    assert fresh.eth.block_number > 0
    path.write_text("{not json")
    again = ensure_deployment(fresh, path, **roles(fresh))
    assert again.vault != redeployed.vault
    assert Deployment.from_json(json.loads(path.read_text())) == again


def test_the_run_command_entry_point_uses_the_dev_accounts_and_reuses(anvil, w3, tmp_path: Path):
    path = tmp_path / "deployment.json"

    first = ensure_local_deployment(anvil.rpc_url, path)
    again = ensure_local_deployment(anvil.rpc_url, path)

    assert again == first
    assert (first.admin, first.operator, first.fee_account) == tuple(w3.eth.accounts[:3])
    assert first.vault in first.describe()
