"""A freshly deployed vault stack per test, on the session's anvil chain.

Each test gets its own vault and tokens, so tests never see each other's balances or batch ids
even though they share the chain and anvil's unlocked accounts.
"""

from __future__ import annotations

import pytest
from web3 import Web3

from exchange.chain import deploy_stack
from tests.contracts.support import TOKENS, Stack


@pytest.fixture
def stack(w3: Web3) -> Stack:
    admin, operator, fee, alice, bob, carol = w3.eth.accounts[:6]
    deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee, tokens=TOKENS)
    return Stack(
        w3=w3,
        deployment=deployment,
        vault=deployment.vault_client(w3, timeout=30),
        admin=admin,
        operator=operator,
        fee=fee,
        alice=alice,
        bob=bob,
        carol=carol,
    )
