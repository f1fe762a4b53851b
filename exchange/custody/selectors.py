"""Custody reads: inclusion proofs of settled fills, a trader's deposits."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest

from exchange.accounts.models import Account
from exchange.chain import TradeTree, trade_key, trade_leaf
from exchange.custody.errors import TradeNotBatched, TradeNotFound
from exchange.custody.models import BatchTrade, ChainCursor, Deposit, SettlementBatch
from exchange.trading.models import Trade


@dataclass(frozen=True, slots=True)
class FillProof:
    trade_id: str
    trade_key: str  # the bytes32 tradeId to pass to ClearwayVault.verifyTrade
    batch_id: int
    vault: str
    root: str
    leaf: str
    proof: list[str]
    settlement_status: str


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def fill_proof(*, account: Account, trade_id: str) -> FillProof:
    """The Merkle proof that the account's trade is in its batch's on-chain root.

    ClearwayVault.verifyTrade(batch_id, trade_key, proof) returns true for it once the batch is
    on chain. Raises TradeNotFound (not the account's trade) or TradeNotBatched.
    """
    trade = (
        Trade.objects.filter(Q(maker_account=account) | Q(taker_account=account))
        .filter(trade_id=trade_id)
        .first()
    )
    if trade is None:
        raise TradeNotFound("No such trade of yours.", extra={"trade_id": trade_id})
    membership = (
        BatchTrade.objects.filter(trade=trade)
        .exclude(batch__status=SettlementBatch.Status.FAILED)
        .select_related("batch")
        .order_by("-batch_id")
        .first()
    )
    if membership is None:
        raise TradeNotBatched(
            "The trade is not in a settlement batch yet.",
            extra={"trade_id": trade_id, "settlement_status": trade.settlement_status},
        )
    batch = membership.batch
    trade_ids = list(
        Trade.objects.filter(batch_memberships__batch=batch).values_list("trade_id", flat=True)
    )
    tree = TradeTree(trade_ids)
    if _hex(tree.root) != batch.trades_root:  # the stored root is what went on chain
        raise RuntimeError(f"batch {batch.batch_id}: recomputed root differs from the stored one")

    return FillProof(
        trade_id=trade.trade_id,
        trade_key=_hex(trade_key(trade.trade_id)),
        batch_id=batch.batch_id,
        vault=batch.vault,
        root=batch.trades_root,
        leaf=_hex(trade_leaf(trade.trade_id)),
        proof=[_hex(node) for node in tree.proof(trade.trade_id)],
        settlement_status=trade.settlement_status,
    )


def deposit_list(*, account: Account) -> QuerySet[Deposit]:
    """The account's deposits, each with ``live_confirmations``: its depth on the chain as the
    watcher has scanned it now (the stored ``confirmations`` stops at the credit), 0 once a
    reorg took it off the chain."""
    tip = ChainCursor.objects.filter(vault=OuterRef("vault")).values("block_number")[:1]
    on_chain = Q(status__in=(Deposit.Status.SEEN, Deposit.Status.CREDITED))
    depth = Greatest(Subquery(tip) - F("block_number") + 1, Value(0))
    return (
        Deposit.objects.filter(account=account)
        .select_related("asset")
        .annotate(
            live_confirmations=Case(
                When(on_chain, then=Coalesce(depth, F("confirmations"))),
                default=Value(0),
                output_field=BigIntegerField(),
            )
        )
    )
