"""The vault stack the contract tests deploy, and its tokens."""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3 import Web3

from exchange.chain import Deployment, TokenSpec, Vault, mint_test_tokens
from exchange.chain.artifacts import contract_at

TOKENS = (TokenSpec("WETH", "Wrapped Ether", 18), TokenSpec("USDC", "USD Coin", 6))


@dataclass
class Stack:
    w3: Web3
    deployment: Deployment
    vault: Vault
    admin: ChecksumAddress
    operator: ChecksumAddress
    fee: ChecksumAddress
    alice: ChecksumAddress
    bob: ChecksumAddress
    carol: ChecksumAddress

    @property
    def weth(self) -> ChecksumAddress:
        return self.deployment.tokens["WETH"]

    @property
    def usdc(self) -> ChecksumAddress:
        return self.deployment.tokens["USDC"]

    def fund(self, account: str, token: str, amount: int) -> None:
        """Mint ``amount`` to ``account`` and deposit it into the vault."""
        mint_test_tokens(self.w3, token, account, amount, sender=account)
        self.vault.deposit(token, amount, sender=account)

    def token_balance(self, token: str, holder: str) -> int:
        """ERC-20 balance held outside the vault's books."""
        return contract_at(self.w3, "TestToken", token).functions.balanceOf(holder).call()
