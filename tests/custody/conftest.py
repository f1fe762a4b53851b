from __future__ import annotations

import pytest

from exchange.accounts.services import trader_get_or_create
from exchange.custody.chain import reset_clients

from .support import Chain, MarketSetup, configure, deploy_chain, make_market


@pytest.fixture
def chain(w3) -> Chain:  # type: ignore[no-untyped-def]
    """A fresh vault and tokens on the session's anvil (automining: one block per transaction)."""
    return deploy_chain(w3)


@pytest.fixture
def custody(db, settings, anvil, chain: Chain) -> MarketSetup:  # type: ignore[no-untyped-def]
    """Custody pointed at ``chain``, with its WETH-USDC market in the database."""
    configure(settings, anvil.rpc_url, chain)
    yield make_market(chain)
    reset_clients()


@pytest.fixture
def alice(chain: Chain, db):  # type: ignore[no-untyped-def]
    return trader_get_or_create(address=chain.traders[0])


@pytest.fixture
def bob(chain: Chain, db):  # type: ignore[no-untyped-def]
    return trader_get_or_create(address=chain.traders[1])
