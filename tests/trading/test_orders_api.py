"""POST/GET/DELETE /api/v1/orders through the real client against a live server."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_account import Account as EthAccount

from exchange.accounts.models import Account
from exchange.accounts.signatures import high_s_twin
from exchange.client import ApiError, ClearwayClient
from exchange.ledger.models import Balance
from exchange.money import from_base_units, to_base_units
from exchange.risk.services import risk_override_set
from exchange.trading.eip712 import SignedOrderFields, sign
from exchange.trading.models import Order, OrderCommand
from exchange.trading.services import deadman_fire_due

USDC = 10**6
WETH = 10**18


def state() -> tuple[int, int, list]:
    balances = sorted(Balance.objects.values_list("account_id", "asset_id", "available", "held"))
    return Order.objects.count(), OrderCommand.objects.count(), balances


def expect_error(call, status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (status, code), caught.value
    return caught.value


def test_limit_buy_holds_notional_plus_fee_and_is_sequenced(trader, market) -> None:
    alice = trader(usdc=10_000 * USDC)
    order = alice.place_order("WETH-USDC", "buy", quantity="0.5", price="2000.01")
    assert alice.last_response.status_code == 202
    assert order["status"] == "accepted"
    assert (order["price"], order["quantity"], order["sequence"]) == ("2000.01", "0.5", 1)
    notional = 1000_005_000  # 0.5 x 2000.01 USDC in micro-USDC
    fee = -(-notional * max(market.maker_fee_bps, market.taker_fee_bps) // 10_000)
    assert fee == 500_003  # 5 bps, rounded up
    assert alice.balance("USDC") == {
        "asset": "USDC",
        "available": from_base_units(10_000 * USDC - notional - fee, 6),
        "held": "1000.505003",
        "total": "10000",
    }
    command = OrderCommand.objects.get()
    assert (command.kind, command.sequence, command.order_id) == ("place", 1, order["id"])


def test_sell_holds_the_base_quantity(trader) -> None:
    bob = trader(weth=2 * WETH)
    bob.place_order("WETH-USDC", "sell", quantity="1.25", price="2100")
    assert bob.balance("WETH")["held"] == "1.25"
    assert bob.balance("WETH")["available"] == "0.75"


def test_retry_with_same_body_returns_the_original(trader) -> None:
    alice = trader(usdc=10_000 * USDC)
    body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="2000")
    first = alice.submit_order(body)
    before = state()
    again = alice.submit_order(body)
    assert alice.last_response.headers["Idempotent-Replayed"] == "true"
    assert again == first
    assert state() == before


def test_concurrent_identical_retries_all_answer_the_original(trader, market) -> None:
    """Four copies of one signed order at once, one token: one order, one hold, and every answer
    is that order (three of them marked as replays), never nonce_reused."""
    alice = trader(usdc=10_000 * USDC)
    risk_override_set(
        account=Account.objects.get(address=alice.address), market=market,
        limits={"rate_limit_per_second": 1000, "rate_limit_burst": 100},
    )  # fmt: skip

    def submit(body: dict, barrier: threading.Barrier) -> tuple[int | str, str | None, int | None]:
        client = ClearwayClient(alice.base_url)
        client.token = alice.token
        barrier.wait()
        try:
            order = client.submit_order(body)
        except ApiError as error:
            return error.code, None, None
        replayed = client.last_response.headers.get("Idempotent-Replayed")
        return client.last_response.status_code, replayed, order["id"]

    for attempt in range(5):  # the race is real: repeat it with fresh bodies
        body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="2000")
        barrier = threading.Barrier(4, timeout=10)
        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(submit, [body] * 4, [barrier] * 4))
        answers = Counter(o[:2] for o in outcomes)
        assert answers == {(202, None): 1, (202, "true"): 3}, (attempt, outcomes)
        assert len({o[2] for o in outcomes}) == 1, outcomes
        assert Order.objects.filter(client_order_id=body["client_order_id"]).count() == 1
    assert alice.balance("USDC")["held"] == from_base_units(5 * 200_100_000, 6)


def test_high_s_twin_of_a_valid_signature_is_400_and_creates_nothing(trader) -> None:
    alice = trader(usdc=10_000 * USDC)
    body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="2000")
    before = state()
    expect_error(
        lambda: alice.submit_order({**body, "signature": high_s_twin(body["signature"])}),
        400, "signature_not_canonical",
    )  # fmt: skip
    assert state() == before
    alice.submit_order(body)  # the wallet's own (low-s) signature is fine
    assert alice.last_response.status_code == 202


def test_same_client_order_id_with_another_body_is_409(trader) -> None:
    alice = trader(usdc=10_000 * USDC)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000", client_order_id="dup")
    before = state()
    expect_error(
        lambda: alice.place_order(
            "WETH-USDC", "buy", quantity="0.2", price="2000", client_order_id="dup"
        ),
        409,
        "client_order_id_conflict",
    )
    assert state() == before


def _resigned(
    client: ClearwayClient, body: dict, *, key=None, chain_id=None, contract=None
) -> dict:
    """The same order fields (naming the client's account) signed with another key, or under
    another chain id or verifying contract."""
    market = client.market(body["market"])
    fields = SignedOrderFields(
        account=client.address, market=body["market"], side=body["side"], orderType=body["type"],
        price=to_base_units(body["price"], market["quote_decimals"]),
        quantity=to_base_units(body["quantity"], market["base_decimals"]),
        timeInForce=body["time_in_force"], postOnly=body["post_only"], selfTradePrevention="",
        clientOrderId=body["client_order_id"], nonce=body["nonce"], expiry=body["expiry"],
    )  # fmt: skip
    domain = client.eip712()["domain"]
    signature = sign(
        fields,
        key or client.wallet.key,
        chain_id or domain["chainId"],
        contract or domain["verifyingContract"],
    )
    return {**body, "signature": signature}


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("bad_signature", 403, "signer_mismatch"),
        ("malformed_signature", 400, "validation_error"),
        ("other_signer", 403, "signer_mismatch"),
        ("wrong_chain_id", 403, "signer_mismatch"),
        ("wrong_verifying_contract", 403, "signer_mismatch"),
        ("expired", 400, "order_expired"),
        ("replayed_nonce", 409, "nonce_reused"),
    ],
)
def test_eip712_rejection_matrix_is_4xx_and_creates_nothing(trader, case, status, code) -> None:
    alice = trader(usdc=10_000 * USDC)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000", nonce=7)
    body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="1999")
    if case == "bad_signature":
        other = alice.order_body("WETH-USDC", "buy", quantity="0.2", price="1999")
        body["signature"] = other["signature"]
    elif case == "malformed_signature":
        body["signature"] = "0x1234"
    elif case == "other_signer":
        body = _resigned(alice, body, key=EthAccount.create().key)
    elif case == "wrong_chain_id":
        body = _resigned(alice, body, chain_id=1)
    elif case == "wrong_verifying_contract":
        body = _resigned(alice, body, contract="0x" + "77" * 20)
    elif case == "expired":
        body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="1999",
                                expiry=int(time.time()) - 1)  # fmt: skip
    elif case == "replayed_nonce":
        body = alice.order_body("WETH-USDC", "buy", quantity="0.1", price="1999", nonce=7)
    before = state()
    error = expect_error(lambda: alice.submit_order(body), status, code)
    assert set(vars(error)) >= {"code", "message", "extra"}
    assert state() == before


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"price": "2000.001"}, "price_not_on_tick"),
        ({"quantity": "0.0001"}, "quantity_not_on_lot"),
        ({"quantity": "-1"}, "amount_not_positive"),
        ({"price": "1e3"}, "invalid_amount"),
        ({"quantity": "2000"}, "quantity_above_max"),
        ({"type": "market", "price": None}, "protection_price_required"),
    ],
)
def test_invalid_order_fields_are_400_and_change_nothing(trader, fields, code) -> None:
    alice = trader(usdc=10**9 * USDC)
    params = {"quantity": "0.1", "price": "2000", **fields}
    if params.get("type") == "market":
        params["time_in_force"] = "ioc"
    # Sign a valid body, then break the field: the client itself refuses to sign bad amounts.
    signable = {k: ("1" if v in ("-1", "1e3") else v) for k, v in params.items()}
    body = alice.order_body("WETH-USDC", "buy", **signable)
    body.update({k: v for k, v in params.items() if v in ("-1", "1e3")})
    before = state()
    with pytest.raises(ApiError) as caught:
        alice.submit_order(body)
    assert caught.value.status == 400
    assert caught.value.code == code
    assert state() == before


def test_insufficient_funds_is_409_and_changes_nothing(trader) -> None:
    alice = trader(usdc=100 * USDC)
    before = state()
    expect_error(lambda: alice.place_order("WETH-USDC", "buy", quantity="1", price="2000"),
                 409, "insufficient_funds")  # fmt: skip
    assert state() == before


def test_halted_market_refuses_orders(trader, market) -> None:
    alice = trader(usdc=10_000 * USDC)
    market.status = "halted"
    market.save()
    expect_error(lambda: alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000"),
                 409, "market_not_open")  # fmt: skip


def test_concurrent_orders_never_overspend(trader, market) -> None:
    alice = trader(usdc=2_010 * USDC)  # room for exactly 10 orders of 0.1 at 2000 (+ fee)
    # Let all 50 through the rate limiter so every one of them races for the balance.
    risk_override_set(
        account=Account.objects.get(address=alice.address), market=market,
        limits={"rate_limit_per_second": 1000, "rate_limit_burst": 100},
    )  # fmt: skip
    bodies = [alice.order_body("WETH-USDC", "buy", quantity="0.1", price="2000") for _ in range(50)]

    def submit(body: dict) -> int | str:
        client = ClearwayClient(alice.base_url)
        client.token = alice.token
        try:
            client.submit_order(body)
            return 202
        except ApiError as error:
            return error.code

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(submit, bodies))
    assert outcomes.count(202) == 10, outcomes
    assert outcomes.count("insufficient_funds") == 40, outcomes
    balance = alice.balance("USDC")
    assert balance["held"] == "2001"
    assert balance["available"] == "9"


def test_cancel_sequences_a_command_and_only_for_the_owner(trader) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    order = alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    before = state()
    expect_error(lambda: mallory.cancel_order(order["id"]), 404, "order_not_found")
    assert state() == before
    alice.cancel_order(order["id"])
    assert alice.last_response.status_code == 202
    cancel = OrderCommand.objects.order_by("-sequence").first()
    assert (cancel.kind, cancel.order_id, cancel.sequence) == ("cancel", order["id"], 2)


def test_no_account_reads_another_accounts_orders(trader) -> None:
    alice, mallory = trader(usdc=10_000 * USDC), trader(usdc=10_000 * USDC)
    order = alice.place_order(
        "WETH-USDC", "buy", quantity="0.1", price="2000", client_order_id="a1"
    )
    expect_error(lambda: mallory.order(order["id"]), 404, "order_not_found")
    expect_error(lambda: mallory.order_by_client_id("a1"), 404, "order_not_found")
    assert mallory.orders()["results"] == []
    assert mallory.fills()["results"] == []
    assert [o["id"] for o in alice.orders()["results"]] == [order["id"]]
    assert alice.order_by_client_id("a1")["id"] == order["id"]
    assert alice.orders(status="open")["results"][0]["id"] == order["id"]
    assert alice.orders(status="filled")["results"] == []


def test_cancel_all_sequences_one_command_per_market(trader) -> None:
    alice = trader(usdc=10_000 * USDC, weth=WETH)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    alice.place_order("WETH-USDC", "sell", quantity="0.1", price="2100")
    assert alice.cancel_all(side="buy") == {"markets": ["WETH-USDC"]}
    command = OrderCommand.objects.order_by("-sequence").first()
    assert (command.kind, command.payload) == ("cancel_all", {"side": "buy"})


def test_dead_man_switch_cancels_all_unless_renewed(trader) -> None:
    from datetime import timedelta

    from django.utils import timezone

    alice = trader(usdc=10_000 * USDC)
    alice.place_order("WETH-USDC", "buy", quantity="0.1", price="2000")
    armed = alice.cancel_after(60)
    assert armed["armed"] is True
    assert deadman_fire_due(now=timezone.now() + timedelta(seconds=30)) == 0
    assert deadman_fire_due(now=timezone.now() + timedelta(seconds=61)) == 1
    assert OrderCommand.objects.filter(kind="cancel_all").count() == 1
    # Fired once: it does not fire again.
    assert deadman_fire_due(now=timezone.now() + timedelta(seconds=120)) == 0
    assert alice.cancel_after(0) == {"armed": False, "deadline": None}


def test_unauthenticated_requests_are_401(server) -> None:
    anonymous = ClearwayClient(server)
    for call in (anonymous.orders, anonymous.fills, anonymous.balances):
        expect_error(call, 401, "not_authenticated")


def test_market_order_without_time_in_force_defaults_to_ioc(trader) -> None:
    bob = trader(weth=WETH)
    # Signed as the server will read it (the default applied), sent without the field.
    body = bob.order_body("WETH-USDC", "sell", type="market", quantity="0.1", time_in_force="ioc")
    del body["time_in_force"]
    order = bob.submit_order(body)
    assert bob.last_response.status_code == 202
    assert (order["type"], order["time_in_force"]) == ("market", "ioc")
    # A limit order keeps GTC as its default.
    body = bob.order_body("WETH-USDC", "sell", quantity="0.1", price="2500")
    del body["time_in_force"]
    assert bob.submit_order(body)["time_in_force"] == "gtc"
