"""Building blocks for custody tests: a vault on anvil, its assets and market in the database,
real deposits, and fills booked the way the matching worker books them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3 import Web3

from exchange.accounts.models import SYSTEM_FEES, Account
from exchange.accounts.services import system_account, trader_get_or_create
from exchange.chain import Deployment, TokenSpec, Vault, deploy_stack, mint_test_tokens
from exchange.custody.chain import reset_clients
from exchange.ledger.models import Balance, Bucket, JournalEntry
from exchange.ledger.services import Line, NewEntry, hold, post_entries, release
from exchange.markets.models import Asset, Market
from exchange.matching import OrderType, SelfTradePrevention, Side, TimeInForce
from exchange.trading.models import Order, Trade
from tests.factories import USDC, asset_make, market_make

TOKENS = (TokenSpec("WETH", "Wrapped Ether", 18), TokenSpec("USDC", "USD Coin", 6))
MAKER_BPS, TAKER_BPS = 2, 5

_sequence = itertools.count(1)


@dataclass
class Chain:
    w3: Web3
    deployment: Deployment
    vault: Vault
    admin: ChecksumAddress
    operator: ChecksumAddress
    fee: ChecksumAddress
    traders: list[ChecksumAddress]

    @property
    def weth(self) -> ChecksumAddress:
        return self.deployment.tokens["WETH"]

    @property
    def usdc(self) -> ChecksumAddress:
        return self.deployment.tokens["USDC"]

    def deposit(self, trader: str, token: str, amount: int) -> str:
        """Mint and deposit into the vault for real; returns the deposit's tx hash."""
        mint_test_tokens(self.w3, token, trader, amount, sender=trader)
        return self.vault.deposit(token, amount, sender=trader).tx_hash


def deploy_chain(w3: Web3) -> Chain:
    admin, operator, fee, *traders = w3.eth.accounts[:8]
    deployment = deploy_stack(w3, admin=admin, operator=operator, fee_account=fee, tokens=TOKENS)
    return Chain(
        w3=w3,
        deployment=deployment,
        vault=deployment.vault_client(w3, timeout=30),
        admin=admin,
        operator=operator,
        fee=fee,
        traders=list(traders),
    )


def configure(settings, rpc_url: str, chain: Chain, **extra: object) -> None:  # type: ignore[no-untyped-def]
    """Point custody at this chain's vault (pytest-django's settings fixture)."""
    settings.CHAIN_RPC_URL = rpc_url
    settings.VAULT_ADDRESS = chain.deployment.vault
    settings.VAULT_DEPLOYED_BLOCK = chain.deployment.deployed_block
    settings.SETTLEMENT_OPERATOR_ADDRESS = chain.operator
    settings.CONFIRMATION_DEPTH = 1
    for name, value in extra.items():
        setattr(settings, name, value)
    reset_clients()


@dataclass
class MarketSetup:
    weth: Asset
    usdc: Asset
    market: Market


def make_market(chain: Chain) -> MarketSetup:
    weth = asset_make("WETH", token_address=chain.weth)
    usdc = asset_make("USDC", token_address=chain.usdc)
    market = market_make(weth, usdc, max_notional=10**9 * USDC, maker_fee_bps=MAKER_BPS,
                         taker_fee_bps=TAKER_BPS)  # fmt: skip
    return MarketSetup(weth, usdc, market)


def _order(account: Account, market: Market, side: Side, price: int, quantity: int) -> Order:
    """An order with its funds held, as order_place leaves it."""
    seq = next(_sequence)
    if side == Side.SELL:
        asset, amount = market.base, quantity
    else:
        notional = market.notional(price, quantity)
        fee_bps = max(market.maker_fee_bps, market.taker_fee_bps)
        asset, amount = market.quote, notional + -(-notional * fee_bps // 10_000)
    client_id = f"t{seq}"
    hold(account=account, asset=asset, amount=amount, reference=f"order:{account.pk}:{client_id}")
    return Order.objects.create(
        account=account,
        market=market,
        side=side.value,
        order_type=OrderType.LIMIT.value,
        price=price,
        quantity=quantity,
        filled_quantity=quantity,
        time_in_force=TimeInForce.GTC.value,
        stp=SelfTradePrevention.CANCEL_TAKER.value,
        client_order_id=client_id,
        nonce=seq,
        signature="0x" + "00" * 65,
        request_fingerprint="0" * 64,
        status=Order.Status.FILLED,
        hold_asset=asset,
        hold_amount=amount,
        hold_remaining=amount,
        sequence=seq,
    )


def fill(
    market: Market,
    *,
    maker: Account,
    taker: Account,
    taker_side: Side,
    price: int,
    quantity: int,
) -> Trade:
    """One fill between two fresh orders, booked as the matching worker books it: the trade
    entry consumes the held funds (buyer pays notional + its fee from held quote, seller its
    base), credits the proceeds, and fees go to system:fees; leftover holds are released."""
    maker_order = _order(
        maker, market, Side.SELL if taker_side == Side.BUY else Side.BUY, price, quantity
    )
    taker_order = _order(taker, market, taker_side, price, quantity)
    notional = market.notional(price, quantity)
    maker_fee = notional * market.maker_fee_bps // 10_000
    taker_fee = notional * market.taker_fee_bps // 10_000
    trade = Trade.objects.create(
        trade_id=f"{market.symbol}-{taker_order.sequence}-0",
        market=market,
        sequence=taker_order.sequence,
        maker_order=maker_order,
        taker_order=taker_order,
        maker_account=maker,
        taker_account=taker,
        taker_side=taker_side.value,
        price=price,
        quantity=quantity,
        notional=notional,
        maker_fee=maker_fee,
        taker_fee=taker_fee,
    )
    if taker_side == Side.BUY:
        buyer, seller, buyer_order, buyer_fee, seller_fee = (
            taker, maker, taker_order, taker_fee, maker_fee,
        )  # fmt: skip
    else:
        buyer, seller, buyer_order, buyer_fee, seller_fee = (
            maker, taker, maker_order, maker_fee, taker_fee,
        )  # fmt: skip
    fees = system_account(SYSTEM_FEES)
    base, quote = market.base_id, market.quote_id
    lines = [
        Line(buyer.pk, quote, -(notional + buyer_fee), Bucket.HELD),
        Line(buyer.pk, base, quantity),
        Line(seller.pk, base, -quantity, Bucket.HELD),
        Line(seller.pk, quote, notional - seller_fee),
    ]
    if maker_fee + taker_fee:
        lines.append(Line(fees.pk, quote, maker_fee + taker_fee))
    post_entries([NewEntry(JournalEntry.Kind.TRADE, f"trade:{trade.trade_id}", lines)])
    leftover = buyer_order.hold_amount - (notional + buyer_fee)
    if leftover:
        release(
            account=buyer,
            asset=market.quote,
            amount=leftover,
            reference=f"order:{buyer.pk}:{buyer_order.client_order_id}",
        )
    Order.objects.filter(pk__in=[maker_order.pk, taker_order.pk]).update(hold_remaining=0)
    return trade


def ledger_total(account: Account, asset: Asset) -> int:
    row = Balance.objects.filter(account=account, asset=asset).first()
    return row.available + row.held if row else 0


def vault_and_ledger(chain: Chain, setup: MarketSetup, addresses: list[str]) -> tuple[dict, dict]:
    """{(who, symbol): amount} on the vault and in the ledger, traders and the fee account."""
    vault, ledger = {}, {}
    fees = system_account(SYSTEM_FEES)
    for asset in (setup.weth, setup.usdc):
        for address in addresses:
            account = trader_get_or_create(address=address)
            vault[(address, asset.symbol)] = chain.vault.balance_of(address, asset.token_address)
            ledger[(address, asset.symbol)] = ledger_total(account, asset)
        vault[("fees", asset.symbol)] = chain.vault.balance_of(chain.fee, asset.token_address)
        ledger[("fees", asset.symbol)] = ledger_total(fees, asset)
    return vault, ledger
