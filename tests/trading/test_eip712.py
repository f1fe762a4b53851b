from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from exchange.accounts.errors import SignatureNotCanonical
from exchange.accounts.signatures import high_s_twin
from exchange.trading.eip712 import (
    SignatureInvalid,
    SignedOrderFields,
    recover_signer,
    sign,
    typed_data,
)

CONTRACT = "0x" + "ab" * 20
OTHER_CONTRACT = "0x" + "cd" * 20
TRADER = Account.create()


def order(**overrides: object) -> SignedOrderFields:
    fields = SignedOrderFields(
        account=TRADER.address, market="WETH-USDC", side="buy", orderType="limit",
        price=2_000_000_000, quantity=10**17, timeInForce="gtc", postOnly=False,
        selfTradePrevention="cancel_taker", clientOrderId="c-1", nonce=1, expiry=2_000_000_000,
    )  # fmt: skip
    return replace(fields, **overrides)


def test_signature_recovers_the_signer() -> None:
    signature = sign(order(), TRADER.key, 31337, CONTRACT)
    assert recover_signer(order(), signature, 31337, CONTRACT) == TRADER.address


@pytest.mark.parametrize(
    "tamper",
    [
        {"price": 2_000_000_001},
        {"quantity": 10**17 + 1},
        {"side": "sell"},
        {"nonce": 2},
        {"clientOrderId": "c-2"},
        {"market": "WBTC-USDC"},
    ],
)
def test_any_changed_field_recovers_another_address(tamper: dict) -> None:
    signature = sign(order(), TRADER.key, 31337, CONTRACT)
    assert recover_signer(order(**tamper), signature, 31337, CONTRACT) != TRADER.address


def test_domain_binds_chain_and_contract() -> None:
    signature = sign(order(), TRADER.key, 31337, CONTRACT)
    assert recover_signer(order(), signature, 1, CONTRACT) != TRADER.address
    assert recover_signer(order(), signature, 31337, OTHER_CONTRACT) != TRADER.address


@pytest.mark.parametrize("bad", ["", "0x", "0x" + "00" * 65, "nothex", 123])
def test_malformed_signature_is_refused(bad: object) -> None:
    with pytest.raises(SignatureInvalid):
        recover_signer(order(), bad, 31337, CONTRACT)  # type: ignore[arg-type]


def test_high_s_twin_is_refused_as_not_canonical() -> None:
    signature = sign(order(), TRADER.key, 31337, CONTRACT)
    twin = high_s_twin(signature)
    # Without the EIP-2 rule the twin recovers the same signer: that is the malleability.
    assert (
        Account.recover_message(
            encode_typed_data(full_message=typed_data(order(), 31337, CONTRACT)), signature=twin
        )
        == TRADER.address
    )
    with pytest.raises(SignatureNotCanonical):
        recover_signer(order(), twin, 31337, CONTRACT)
