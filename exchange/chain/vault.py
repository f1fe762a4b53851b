"""Typed calls into a deployed ClearwayVault: settle batches, pay withdrawals, read state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import BlockNotFound

from exchange.chain.artifacts import checksum, contract_at
from exchange.chain.deltas import Delta, encode_deltas
from exchange.chain.errors import BatchConflict, ContractRevert, PayoutConflict
from exchange.chain.ids import OffchainId, id_key
from exchange.chain.merkle import trade_key
from exchange.chain.tx import RECEIPT_TIMEOUT, TxResult, send

ZERO_ROOT = bytes(32)

# (account, token, amount, to) of a payout.
_PayoutParams = tuple[ChecksumAddress, ChecksumAddress, int, ChecksumAddress]


def withdrawal_key(withdrawal_id: OffchainId) -> bytes:
    """The bytes32 withdrawal id the contract records: keccak256 of the id's UTF-8 text."""
    return id_key(withdrawal_id)


@dataclass(frozen=True, slots=True)
class Settlement:
    """Batch ``batch_id`` as settled on chain (``already_settled``: by an earlier attempt)."""

    batch_id: int
    trades_root: bytes
    delta_count: int
    tx: TxResult
    already_settled: bool


@dataclass(frozen=True, slots=True)
class Payout:
    withdrawal_key: bytes
    account: ChecksumAddress
    token: ChecksumAddress
    amount: int
    to: ChecksumAddress
    tx: TxResult
    already_paid: bool


@dataclass(frozen=True, slots=True)
class DepositLog:
    """A Deposited event; (tx_hash, log_index) identifies it, block_hash detects reorgs."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    depositor: ChecksumAddress
    token: ChecksumAddress
    amount: int


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class Vault:
    """One ClearwayVault. Transactions wait for inclusion only; confirmation depth is the
    caller's concern (see :meth:`confirmations`)."""

    def __init__(
        self,
        w3: Web3,
        address: str,
        *,
        from_block: int = 0,
        timeout: float = RECEIPT_TIMEOUT,
    ):
        self.w3 = w3
        self.address = checksum(address)
        self.contract = contract_at(w3, "ClearwayVault", self.address)
        # Log queries start here (the deployment block) instead of genesis.
        self.from_block = from_block
        self.timeout = timeout

    # ----------------------------------------------------------------------------- sending
    def transact(self, call: ContractFunction, *, sender: str, gas: int | None = None) -> TxResult:
        """Send any vault (or token) call; reverts raise ContractRevert with the error's name."""
        return send(self.w3, call, sender=sender, timeout=self.timeout, gas=gas)

    # ------------------------------------------------------------------------------- views
    def balance_of(self, account: str, token: str) -> int:
        return self.contract.functions.balanceOf(checksum(account), checksum(token)).call()

    def next_batch_id(self) -> int:
        return self.contract.functions.nextBatchId().call()

    def batch_root(self, batch_id: int) -> bytes:
        return bytes(self.contract.functions.batchRoot(batch_id).call())

    def verify_trade(self, batch_id: int, trade_id: OffchainId, proof: Sequence[bytes]) -> bool:
        return self.contract.functions.verifyTrade(
            batch_id, trade_key(trade_id), list(proof)
        ).call()

    def withdrawal_paid(self, withdrawal_id: OffchainId) -> bool:
        return self.contract.functions.withdrawalPaid(withdrawal_key(withdrawal_id)).call()

    def is_token_allowed(self, token: str) -> bool:
        return self.contract.functions.isTokenAllowed(checksum(token)).call()

    def paused(self) -> bool:
        return self.contract.functions.paused().call()

    def fee_account(self) -> ChecksumAddress:
        return checksum(self.contract.functions.feeAccount().call())

    def confirmations(self, tx: TxResult) -> int:
        """Blocks on top of ``tx``'s block (1 = just mined); 0 if a reorg dropped that block."""
        try:
            block = self.w3.eth.get_block(tx.block_number)
        except BlockNotFound:  # the chain is now shorter than it was (a deep reorg)
            return 0
        if _hex(block["hash"]) != tx.block_hash:
            return 0
        return self.w3.eth.block_number - tx.block_number + 1

    # ---------------------------------------------------------------------------- operator
    def settle_batch(
        self,
        batch_id: int,
        trades_root: bytes,
        deltas: Iterable[Delta],
        *,
        sender: str,
    ) -> Settlement:
        """Settle batch ``batch_id``; safe to retry.

        If the chain already holds this batch with the same root (an earlier attempt got
        through), returns that settlement with ``already_settled=True`` instead of sending. A
        different root under the same id raises BatchConflict; a batch id that is not next
        raises ContractRevert("BatchOutOfOrder").
        """
        groups = encode_deltas(deltas)
        count = sum(len(entries) for _, entries in groups)
        if (found := self._already_settled(batch_id, trades_root)) is not None:
            return found
        call = self.contract.functions.settleBatch(batch_id, trades_root, groups)
        try:
            tx = self.transact(call, sender=sender)
        except ContractRevert as exc:
            # Lost a race with our own earlier attempt (e.g. a retry while it was pending).
            if exc.name == "BatchOutOfOrder":
                found = self._already_settled(batch_id, trades_root)
                if found is not None:
                    return found
            raise
        return Settlement(batch_id, trades_root, count, tx, already_settled=False)

    def _already_settled(self, batch_id: int, trades_root: bytes) -> Settlement | None:
        onchain = self.batch_root(batch_id)
        if onchain == ZERO_ROOT:
            return None
        if onchain != trades_root:
            raise BatchConflict(batch_id, onchain, trades_root)
        return self.find_settlement(batch_id)

    def find_settlement(self, batch_id: int) -> Settlement | None:
        """The BatchSettled event of ``batch_id``, if the chain has one."""
        logs = self.contract.events.BatchSettled.get_logs(
            from_block=self.from_block, argument_filters={"batchId": batch_id}
        )
        if not logs:
            return None
        log = logs[-1]
        receipt = self.w3.eth.get_transaction_receipt(log["transactionHash"])
        return Settlement(
            batch_id=batch_id,
            trades_root=bytes(log["args"]["tradesRoot"]),
            delta_count=int(log["args"]["deltaCount"]),
            tx=TxResult(
                tx_hash=_hex(log["transactionHash"]),
                block_number=int(log["blockNumber"]),
                block_hash=_hex(log["blockHash"]),
                gas_used=int(receipt["gasUsed"]),
            ),
            already_settled=True,
        )

    def payout(
        self,
        withdrawal_id: OffchainId,
        *,
        account: str,
        token: str,
        amount: int,
        to: str,
        sender: str,
    ) -> Payout:
        """Pay a withdrawal; safe to retry.

        A withdrawal id pays at most once on chain. If it was already paid with these same
        parameters, returns that payout with ``already_paid=True``; with other parameters,
        raises PayoutConflict.
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive int of base units, not {amount!r}")
        key = withdrawal_key(withdrawal_id)
        wanted = (checksum(account), checksum(token), amount, checksum(to))
        if self.withdrawal_paid(key):
            return self._paid(key, wanted)
        account_, token_, _, to_ = wanted
        call = self.contract.functions.payout(key, account_, token_, amount, to_)
        try:
            tx = self.transact(call, sender=sender)
        except ContractRevert as exc:
            if exc.name == "WithdrawalAlreadyPaid":
                return self._paid(key, wanted)
            raise
        return Payout(key, *wanted, tx=tx, already_paid=False)

    def _paid(self, key: bytes, wanted: _PayoutParams) -> Payout:
        logs = self.contract.events.WithdrawalPaid.get_logs(
            from_block=self.from_block, argument_filters={"withdrawalId": key}
        )
        if not logs:
            raise PayoutConflict(f"withdrawal 0x{key.hex()} is paid but its event was not found")
        log = logs[-1]
        args = log["args"]
        found = (
            checksum(args["account"]),
            checksum(args["token"]),
            args["amount"],
            checksum(args["to"]),
        )
        if found != wanted:
            raise PayoutConflict(f"withdrawal 0x{key.hex()} was paid as {found}, not {wanted}")
        receipt = self.w3.eth.get_transaction_receipt(log["transactionHash"])
        return Payout(
            key,
            *found,
            tx=TxResult(
                tx_hash=_hex(log["transactionHash"]),
                block_number=int(log["blockNumber"]),
                block_hash=_hex(log["blockHash"]),
                gas_used=int(receipt["gasUsed"]),
            ),
            already_paid=True,
        )

    # ----------------------------------------------------------------------------- traders
    def deposit(self, token: str, amount: int, *, sender: str, approve: bool = True) -> TxResult:
        """Deposit from ``sender`` (approving the vault for ``amount`` first, by default)."""
        if approve:
            erc20 = contract_at(self.w3, "TestToken", token)
            self.transact(erc20.functions.approve(self.address, amount), sender=sender)
        return self.transact(
            self.contract.functions.deposit(checksum(token), amount), sender=sender
        )

    def deposits(self, from_block: int, to_block: int | str = "latest") -> list[DepositLog]:
        """Deposited events in a block range, in chain order."""
        logs = self.contract.events.Deposited.get_logs(from_block=from_block, to_block=to_block)
        return [
            DepositLog(
                tx_hash=_hex(log["transactionHash"]),
                log_index=int(log["logIndex"]),
                block_number=int(log["blockNumber"]),
                block_hash=_hex(log["blockHash"]),
                depositor=checksum(log["args"]["depositor"]),
                token=checksum(log["args"]["token"]),
                amount=int(log["args"]["amount"]),
            )
            for log in logs
        ]

    # ------------------------------------------------------------------------------- admin
    def allow_token(self, token: str, *, sender: str) -> TxResult:
        return self.transact(self.contract.functions.allowToken(checksum(token)), sender=sender)

    def disallow_token(self, token: str, *, sender: str) -> TxResult:
        return self.transact(self.contract.functions.disallowToken(checksum(token)), sender=sender)

    def pause(self, *, sender: str) -> TxResult:
        return self.transact(self.contract.functions.pause(), sender=sender)

    def unpause(self, *, sender: str) -> TxResult:
        return self.transact(self.contract.functions.unpause(), sender=sender)
