"""ClearwayVault on a real anvil chain, driven through exchange.chain and web3.py."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from exchange.chain import (
    BatchConflict,
    ContractRevert,
    Delta,
    PayoutConflict,
    TradeTree,
    UnbalancedDeltas,
    load_artifact,
    mint_test_tokens,
    withdrawal_key,
)
from exchange.chain.deploy import deploy_contract
from tests.contracts.support import Stack

WETH = 10**18
USDC = 10**6
ROOT = TradeTree(["t-1"]).root


def settle_raw(stack: Stack, batch_id: int, groups: list, *, sender: str | None = None):
    """settleBatch exactly as given, bypassing the helper's netting and checks."""
    call = stack.vault.contract.functions.settleBatch(batch_id, ROOT, groups)
    return stack.vault.transact(call, sender=sender or stack.operator)


def payout_raw(stack: Stack, withdrawal_id: str, account: str, token: str, amount: int, to: str):
    call = stack.vault.contract.functions.payout(
        withdrawal_key(withdrawal_id), account, token, amount, to
    )
    return stack.vault.transact(call, sender=stack.operator)


# ------------------------------------------------------------------------------------ deposits
def test_deposit_credits_the_depositor_and_emits_an_event(stack: Stack):
    mint_test_tokens(stack.w3, stack.usdc, stack.alice, 250 * USDC, sender=stack.alice)

    tx = stack.vault.deposit(stack.usdc, 100 * USDC, sender=stack.alice)

    assert stack.vault.balance_of(stack.alice, stack.usdc) == 100 * USDC
    assert stack.vault.balance_of(stack.bob, stack.usdc) == 0
    assert stack.token_balance(stack.usdc, stack.alice) == 150 * USDC
    assert stack.token_balance(stack.usdc, stack.vault.address) == 100 * USDC
    [event] = stack.vault.deposits(tx.block_number, tx.block_number)
    assert (event.depositor, event.token, event.amount) == (stack.alice, stack.usdc, 100 * USDC)
    assert (event.tx_hash, event.block_hash) == (tx.tx_hash, tx.block_hash)
    receipt = stack.w3.eth.get_transaction_receipt(tx.tx_hash)
    vault_logs = [log for log in receipt["logs"] if log["address"] == stack.vault.address]
    assert [log["logIndex"] for log in vault_logs] == [event.log_index]


def test_deposit_of_a_token_not_allowlisted_reverts(stack: Stack):
    other, _ = deploy_contract(stack.w3, "TestToken", "Other", "OTH", 18, sender=stack.admin)
    mint_test_tokens(stack.w3, other.address, stack.alice, WETH, sender=stack.alice)

    with pytest.raises(ContractRevert) as caught:
        stack.vault.deposit(other.address, WETH, sender=stack.alice)

    assert caught.value.name == "TokenNotAllowed"
    assert caught.value.params == {"token": other.address}
    assert stack.vault.balance_of(stack.alice, other.address) == 0


def test_a_removed_token_stops_deposits_but_still_pays_out(stack: Stack):
    stack.fund(stack.alice, stack.weth, 2 * WETH)
    stack.vault.disallow_token(stack.weth, sender=stack.admin)
    mint_test_tokens(stack.w3, stack.weth, stack.alice, WETH, sender=stack.alice)

    with pytest.raises(ContractRevert) as caught:
        stack.vault.deposit(stack.weth, WETH, sender=stack.alice)
    assert caught.value.name == "TokenNotAllowed"

    payout_raw(stack, "w-1", stack.alice, stack.weth, 2 * WETH, stack.alice)
    assert stack.vault.balance_of(stack.alice, stack.weth) == 0


def test_zero_deposit_reverts(stack: Stack):
    with pytest.raises(ContractRevert) as caught:
        stack.vault.deposit(stack.weth, 0, sender=stack.alice)
    assert caught.value.name == "ZeroAmount"


# ---------------------------------------------------------------------------------- settlement
def trade_deltas(stack: Stack) -> list[Delta]:
    """Alice buys 2 WETH from Bob at 3,000 USDC; each pays a fee in what they receive."""
    base, quote = 2 * WETH, 6_000 * USDC
    buyer_fee, seller_fee = base * 5 // 10_000, quote * 2 // 10_000
    return [
        Delta(stack.alice, stack.weth, base - buyer_fee),
        Delta(stack.alice, stack.usdc, -quote),
        Delta(stack.bob, stack.weth, -base),
        Delta(stack.bob, stack.usdc, quote - seller_fee),
        Delta(stack.fee, stack.weth, buyer_fee),
        Delta(stack.fee, stack.usdc, seller_fee),
    ]


def test_settlement_moves_balances_records_the_root_and_emits_one_event(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 10_000 * USDC)
    stack.fund(stack.bob, stack.weth, 5 * WETH)
    tree = TradeTree(["t-1", "t-2"])

    settled = stack.vault.settle_batch(1, tree.root, trade_deltas(stack), sender=stack.operator)

    balances = {
        (who, token): stack.vault.balance_of(who, token)
        for who in (stack.alice, stack.bob, stack.fee)
        for token in (stack.weth, stack.usdc)
    }
    assert balances == {
        (stack.alice, stack.weth): 2 * WETH - 2 * WETH * 5 // 10_000,
        (stack.alice, stack.usdc): 4_000 * USDC,
        (stack.bob, stack.weth): 3 * WETH,
        (stack.bob, stack.usdc): 6_000 * USDC - 6_000 * USDC * 2 // 10_000,
        (stack.fee, stack.weth): 2 * WETH * 5 // 10_000,
        (stack.fee, stack.usdc): 6_000 * USDC * 2 // 10_000,
    }
    # Settlement moves vault balances only; the vault's token holdings stay put.
    assert stack.token_balance(stack.weth, stack.vault.address) == 5 * WETH
    assert stack.token_balance(stack.usdc, stack.vault.address) == 10_000 * USDC
    assert stack.vault.batch_root(1) == tree.root
    assert stack.vault.next_batch_id() == 2
    assert (settled.delta_count, settled.already_settled) == (6, False)
    receipt = stack.w3.eth.get_transaction_receipt(settled.tx.tx_hash)
    events = stack.vault.contract.events.BatchSettled().process_receipt(receipt)
    assert [dict(e["args"]) for e in events] == [
        {"batchId": 1, "tradesRoot": tree.root, "deltaCount": 6}
    ]
    assert len(receipt["logs"]) == 1


def test_replayed_batch_reverts(stack: Stack):
    stack.fund(stack.alice, stack.weth, WETH)
    groups = [(stack.weth, [(stack.alice, -WETH), (stack.bob, WETH)])]
    settle_raw(stack, 1, groups)

    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 1, [(stack.weth, [(stack.bob, -WETH), (stack.alice, WETH)])])

    assert caught.value.name == "BatchOutOfOrder"
    assert caught.value.params == {"expected": 2, "got": 1}
    assert stack.vault.balance_of(stack.bob, stack.weth) == WETH


def test_skipped_batch_id_reverts(stack: Stack):
    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 2, [])
    assert caught.value.params == {"expected": 1, "got": 2}
    assert caught.value.name == "BatchOutOfOrder"
    assert stack.vault.batch_root(2) == bytes(32)


def test_batch_from_a_non_operator_reverts(stack: Stack):
    for outsider in (stack.alice, stack.admin):
        with pytest.raises(ContractRevert) as caught:
            settle_raw(stack, 1, [], sender=outsider)
        assert caught.value.name == "AccessControlUnauthorizedAccount"
        assert caught.value.params["account"] == outsider
    assert stack.vault.next_batch_id() == 1


def test_deltas_that_do_not_sum_to_zero_revert(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 10 * USDC)
    balanced_weth = (stack.weth, [])
    unbalanced = (stack.usdc, [(stack.alice, -10 * USDC), (stack.bob, 9 * USDC)])

    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 1, [balanced_weth, unbalanced])

    assert caught.value.name == "DeltasNotBalanced"
    assert caught.value.params == {"token": stack.usdc}
    assert stack.vault.balance_of(stack.alice, stack.usdc) == 10 * USDC


def test_a_token_split_across_groups_must_balance_in_each_group(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 10 * USDC)
    groups = [
        (stack.usdc, [(stack.alice, -10 * USDC)]),
        (stack.usdc, [(stack.bob, 10 * USDC)]),
    ]
    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 1, groups)
    assert caught.value.name == "DeltasNotBalanced"


def test_the_helper_rejects_unbalanced_deltas_before_sending(stack: Stack):
    block = stack.w3.eth.block_number
    with pytest.raises(UnbalancedDeltas):
        stack.vault.settle_batch(
            1, ROOT, [Delta(stack.alice, stack.weth, 1)], sender=stack.operator
        )
    assert stack.w3.eth.block_number == block


def test_a_delta_that_would_make_a_balance_negative_reverts(stack: Stack):
    stack.fund(stack.alice, stack.weth, WETH)
    groups = [(stack.weth, [(stack.bob, 2 * WETH), (stack.alice, -2 * WETH)])]

    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 1, groups)

    assert caught.value.name == "InsufficientBalance"
    assert caught.value.params == {
        "account": stack.alice,
        "token": stack.weth,
        "balance": WETH,
        "needed": 2 * WETH,
    }
    assert stack.vault.balance_of(stack.alice, stack.weth) == WETH
    assert stack.vault.balance_of(stack.bob, stack.weth) == 0
    assert stack.vault.next_batch_id() == 1


def test_settling_a_token_no_longer_allowed_reverts(stack: Stack):
    stack.fund(stack.alice, stack.weth, WETH)
    stack.vault.disallow_token(stack.weth, sender=stack.admin)
    with pytest.raises(ContractRevert) as caught:
        settle_raw(stack, 1, [(stack.weth, [(stack.alice, -WETH), (stack.bob, WETH)])])
    assert caught.value.name == "TokenNotAllowed"


def test_an_empty_trades_root_reverts(stack: Stack):
    call = stack.vault.contract.functions.settleBatch(1, bytes(32), [])
    with pytest.raises(ContractRevert) as caught:
        stack.vault.transact(call, sender=stack.operator)
    assert caught.value.name == "EmptyTradesRoot"


def test_settle_batch_is_safe_to_retry(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 10_000 * USDC)
    stack.fund(stack.bob, stack.weth, 5 * WETH)
    tree = TradeTree(["t-1"])
    first = stack.vault.settle_batch(1, tree.root, trade_deltas(stack), sender=stack.operator)

    again = stack.vault.settle_batch(1, tree.root, trade_deltas(stack), sender=stack.operator)

    assert again.already_settled
    assert again.tx == first.tx
    assert stack.vault.balance_of(stack.alice, stack.usdc) == 4_000 * USDC
    with pytest.raises(BatchConflict):
        stack.vault.settle_batch(1, TradeTree(["t-2"]).root, [], sender=stack.operator)


# ------------------------------------------------------------------------------------ payouts
def test_payout_debits_the_account_and_transfers_the_tokens(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 500 * USDC)

    args = {"account": stack.alice, "token": stack.usdc, "amount": 200 * USDC, "to": stack.carol}
    paid = stack.vault.payout("w-42", **args, sender=stack.operator)

    assert stack.vault.balance_of(stack.alice, stack.usdc) == 300 * USDC
    assert stack.token_balance(stack.usdc, stack.carol) == 200 * USDC
    assert stack.token_balance(stack.usdc, stack.vault.address) == 300 * USDC
    assert stack.vault.withdrawal_paid("w-42")
    assert not paid.already_paid
    receipt = stack.w3.eth.get_transaction_receipt(paid.tx.tx_hash)
    [event] = stack.vault.contract.events.WithdrawalPaid().process_receipt(receipt, DISCARD)
    assert dict(event["args"]) == {
        "withdrawalId": withdrawal_key("w-42"),
        "account": stack.alice,
        "token": stack.usdc,
        "to": stack.carol,
        "amount": 200 * USDC,
    }


def test_a_withdrawal_id_pays_at_most_once(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 500 * USDC)
    payout_raw(stack, "w-7", stack.alice, stack.usdc, 100 * USDC, stack.alice)

    with pytest.raises(ContractRevert) as caught:
        payout_raw(stack, "w-7", stack.alice, stack.usdc, 100 * USDC, stack.alice)

    assert caught.value.name == "WithdrawalAlreadyPaid"
    assert caught.value.params == {"withdrawalId": withdrawal_key("w-7")}
    assert stack.vault.balance_of(stack.alice, stack.usdc) == 400 * USDC


def test_payout_helper_is_safe_to_retry_and_refuses_a_different_payout(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 500 * USDC)
    args = {"account": stack.alice, "token": stack.usdc, "amount": 100 * USDC, "to": stack.bob}
    first = stack.vault.payout("w-8", **args, sender=stack.operator)

    again = stack.vault.payout("w-8", **args, sender=stack.operator)

    assert again.already_paid and again.tx == first.tx
    assert stack.token_balance(stack.usdc, stack.bob) == 100 * USDC
    with pytest.raises(PayoutConflict):
        stack.vault.payout("w-8", **{**args, "amount": 99 * USDC}, sender=stack.operator)


def test_payout_beyond_the_balance_or_by_a_non_operator_reverts(stack: Stack):
    stack.fund(stack.alice, stack.usdc, 5 * USDC)
    with pytest.raises(ContractRevert) as caught:
        payout_raw(stack, "w-1", stack.alice, stack.usdc, 6 * USDC, stack.alice)
    assert caught.value.name == "InsufficientBalance"

    call = stack.vault.contract.functions.payout(
        withdrawal_key("w-1"), stack.alice, stack.usdc, 5 * USDC, stack.alice
    )
    with pytest.raises(ContractRevert) as caught:
        stack.vault.transact(call, sender=stack.alice)
    assert caught.value.name == "AccessControlUnauthorizedAccount"
    assert not stack.vault.withdrawal_paid("w-1")


# ------------------------------------------------------------------------------------- pausing
def test_a_paused_vault_rejects_deposits_settlement_and_payouts(stack: Stack):
    stack.fund(stack.alice, stack.weth, 2 * WETH)
    mint_test_tokens(stack.w3, stack.weth, stack.alice, WETH, sender=stack.alice)
    stack.vault.pause(sender=stack.admin)
    assert stack.vault.paused()

    attempts = {
        "deposit": lambda: stack.vault.deposit(stack.weth, WETH, sender=stack.alice),
        "settle": lambda: settle_raw(
            stack, 1, [(stack.weth, [(stack.alice, -WETH), (stack.bob, WETH)])]
        ),
        "payout": lambda: payout_raw(stack, "w-1", stack.alice, stack.weth, WETH, stack.alice),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ContractRevert) as caught:
            attempt()
        assert caught.value.name == "EnforcedPause", what

    stack.vault.unpause(sender=stack.admin)
    settle_raw(stack, 1, [(stack.weth, [(stack.alice, -WETH), (stack.bob, WETH)])])
    assert stack.vault.balance_of(stack.bob, stack.weth) == WETH


def test_only_the_admin_pauses(stack: Stack):
    for outsider in (stack.operator, stack.alice):
        with pytest.raises(ContractRevert) as caught:
            stack.vault.pause(sender=outsider)
        assert caught.value.name == "AccessControlUnauthorizedAccount"
    assert not stack.vault.paused()


# --------------------------------------------------------------------------------- reentrancy
@pytest.fixture
def evil(stack: Stack):
    token, _ = deploy_contract(stack.w3, "ReentrantToken", sender=stack.admin)
    stack.vault.allow_token(token.address, sender=stack.admin)
    return token


def arm(stack: Stack, evil, call_data: str) -> None:
    stack.vault.transact(evil.functions.arm(stack.vault.address, call_data), sender=stack.alice)


def test_a_token_reentering_deposit_from_transfer_from_is_stopped(stack: Stack, evil):
    mint_test_tokens(stack.w3, evil.address, stack.alice, 10 * WETH, sender=stack.alice)
    mint_test_tokens(stack.w3, evil.address, evil.address, 10 * WETH, sender=stack.alice)
    # Without the guard the nested deposit would land between the vault's balance snapshots and
    # be credited twice.
    arm(stack, evil, stack.vault.contract.encode_abi("deposit", args=[evil.address, WETH]))

    with pytest.raises(ContractRevert) as caught:
        stack.vault.deposit(evil.address, WETH, sender=stack.alice)

    assert caught.value.name == "ReentrancyGuardReentrantCall"
    assert stack.vault.balance_of(stack.alice, evil.address) == 0
    assert stack.vault.balance_of(evil.address, evil.address) == 0


def test_a_token_reentering_from_a_payout_transfer_is_stopped(stack: Stack, evil):
    mint_test_tokens(stack.w3, evil.address, stack.alice, 10 * WETH, sender=stack.alice)
    stack.vault.deposit(evil.address, 10 * WETH, sender=stack.alice)  # not armed yet
    assert stack.vault.balance_of(stack.alice, evil.address) == 10 * WETH
    arm(stack, evil, stack.vault.contract.encode_abi("deposit", args=[evil.address, WETH]))

    with pytest.raises(ContractRevert) as caught:
        payout_raw(stack, "w-evil", stack.alice, evil.address, WETH, stack.carol)

    assert caught.value.name == "ReentrancyGuardReentrantCall"
    assert stack.vault.balance_of(stack.alice, evil.address) == 10 * WETH
    assert not stack.vault.withdrawal_paid("w-evil")


# ------------------------------------------------------------------------------- merkle proofs
@pytest.mark.parametrize("size", [1, 2, 3, 8, 37])
def test_every_trade_proves_its_inclusion_on_chain(stack: Stack, size: int):
    trade_ids = [f"trade-{size}-{i}" for i in range(size)]
    tree = TradeTree(trade_ids)
    stack.vault.settle_batch(1, tree.root, [], sender=stack.operator)

    for trade_id in trade_ids:
        assert stack.vault.verify_trade(1, trade_id, tree.proof(trade_id)), trade_id


def test_wrong_proofs_fail_on_chain(stack: Stack):
    trade_ids = [f"t-{i}" for i in range(6)]
    tree = TradeTree(trade_ids)
    stack.vault.settle_batch(1, tree.root, [], sender=stack.operator)
    proof = tree.proof("t-3")
    assert stack.vault.verify_trade(1, "t-3", proof)

    tampered = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert not stack.vault.verify_trade(1, "t-3", tampered)
    assert not stack.vault.verify_trade(1, "t-4", proof)  # someone else's proof
    assert not stack.vault.verify_trade(1, "t-99", proof)  # not in the batch
    assert not stack.vault.verify_trade(2, "t-3", proof)  # batch not settled
    # An inner node must not pass for a leaf: that is what double-hashed leaves buy.
    assert not stack.vault.contract.functions.verifyTrade(1, proof[-1], []).call()


def test_artifact_abi_has_the_documented_errors():
    errors = {
        item["name"] for item in load_artifact("ClearwayVault").abi if item["type"] == "error"
    }
    assert {
        "BatchOutOfOrder",
        "DeltasNotBalanced",
        "WithdrawalAlreadyPaid",
        "TokenNotAllowed",
        "InsufficientBalance",
        "EnforcedPause",
        "ReentrancyGuardReentrantCall",
        "AccessControlUnauthorizedAccount",
    } <= errors
