"""Custody writes for settlement: cutting trade batches and settling them on the vault.

Settlement keeps the vault's balances equal to the ledger's. A trade moves, in base units
(buyer/seller fees are the taker's or maker's fee, by which side was the taker):

    buyer   base  +quantity          quote  -(notional + buyer_fee)
    seller  base  -quantity          quote  +(notional - seller_fee)
    fees                             quote  +(maker_fee + taker_fee)

which is exactly what the matching worker posts to the ledger (available + held per account and
asset; the fee account stands for system:fees). A batch carries those changes netted per
(account, token), so once every batch is confirmed, balanceOf(account, token) on the vault equals
the account's ledger total, deposits being credited on both sides for the same amounts.

Batch ids are the contract's: strictly sequential per vault, from a counter row locked FOR UPDATE.
A batch is cut only once the previous one is on chain, so batches reach the contract in order, a
rejected batch can give its id back, and nothing else ever waits on a batch that will not come.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from exchange.chain import ContractRevert, Delta, TradeTree, TxResult, net_deltas
from exchange.custody import metrics
from exchange.custody.blocks import _hex
from exchange.custody.chain import ChainClients, clients, setting
from exchange.custody.errors import AssetNotOnChain, BatchAbandoned, SettlementRejected
from exchange.custody.models import BatchCounter, BatchTrade, SettlementBatch
from exchange.matching import Side
from exchange.trading.models import Trade

log = logging.getLogger(__name__)

Status = SettlementBatch.Status
TradeStatus = Trade.SettlementStatus

# Reverts that are about the batch itself: resending the same batch cannot succeed. Every other
# revert (EnforcedPause, a missing operator role, BatchOutOfOrder while an earlier batch is still
# pending...) is about the moment or the setup, and is retried.
REJECTING_REVERTS = frozenset(
    {"InsufficientBalance", "TokenNotAllowed", "DeltasNotBalanced", "EmptyTradesRoot", "Panic"}
)


# --------------------------------------------------------------------------------- netting
def trade_changes(trade: Trade, *, fee_account: str) -> list[Delta]:
    """The vault balance changes of one trade (see the module docstring)."""
    market = trade.market
    base, quote = market.base.token_address, market.quote.token_address
    for asset, token in ((market.base, base), (market.quote, quote)):
        if not token:
            raise AssetNotOnChain(f"asset {asset.symbol} has no token address; cannot settle")
    if trade.taker_side == Side.BUY.value:
        buyer, seller = trade.taker_account, trade.maker_account
        buyer_fee, seller_fee = trade.taker_fee, trade.maker_fee
    else:
        buyer, seller = trade.maker_account, trade.taker_account
        buyer_fee, seller_fee = trade.maker_fee, trade.taker_fee
    return [
        Delta(buyer.address, base, trade.quantity),
        Delta(seller.address, base, -trade.quantity),
        Delta(buyer.address, quote, -(trade.notional + buyer_fee)),
        Delta(seller.address, quote, trade.notional - seller_fee),
        Delta(fee_account, quote, trade.maker_fee + trade.taker_fee),
    ]


def batch_deltas(trades: Iterable[Trade], *, fee_account: str) -> list[Delta]:
    changes: list[Delta] = []
    for trade in trades:
        changes += trade_changes(trade, fee_account=fee_account)
    return net_deltas(changes)


def deltas_to_json(deltas: Sequence[Delta]) -> list[dict[str, str]]:
    return [{"account": d.account, "token": d.token, "amount": str(d.amount)} for d in deltas]


def deltas_from_json(data: Sequence[dict[str, str]]) -> list[Delta]:
    return [Delta(item["account"], item["token"], int(item["amount"])) for item in data]


_fee_accounts: dict[str, str] = {}


def vault_fee_account(chain: ChainClients) -> str:
    """The vault's fee account (read once per vault and process: only an admin changes it)."""
    found = _fee_accounts.get(chain.config.vault)
    if found is None:
        with chain.breaker.guard():
            found = _fee_accounts[chain.config.vault] = chain.vault.fee_account()
    return found


# --------------------------------------------------------------------------------- batches
def _lock_counter(vault: str) -> BatchCounter:
    BatchCounter.objects.get_or_create(vault=vault)
    return BatchCounter.objects.select_for_update().get(vault=vault)


def batch_due(*, max_trades: int, max_age_seconds: float, now: datetime | None = None) -> bool:
    """True when ``max_trades`` trades wait, or the oldest waiting one is ``max_age`` old."""
    now = now or timezone.now()
    waiting = Trade.objects.filter(settlement_status=TradeStatus.MATCHED)
    oldest = waiting.order_by("id").values_list("created_at", flat=True).first()
    if oldest is None:
        return False
    if oldest <= now - timedelta(seconds=max_age_seconds):
        return True
    return waiting.order_by("id")[:max_trades].count() >= max_trades


def batches_awaiting_submission() -> list[SettlementBatch]:
    """Batches cut but not yet on chain (at most one, by construction), oldest first."""
    vault = clients().config.vault
    return list(SettlementBatch.objects.filter(vault=vault, status=Status.BUILT).order_by("id"))


@transaction.atomic
def batch_cut(
    *, max_trades: int, key: str | None = None, now: datetime | None = None
) -> SettlementBatch | None:
    """Cut the next batch from up to ``max_trades`` matched trades, oldest first.

    Returns None when nothing is waiting or the previous batch is not on chain yet. Trades move
    to ``batched``; the batch gets the vault's next batch id. With an idempotency ``key``, a
    repeated call returns the batch the first one cut (whatever its status now) instead of
    cutting another.
    """
    if max_trades < 1:
        raise ValueError("max_trades must be at least 1")
    chain = clients()
    vault = chain.config.vault
    fee_account = vault_fee_account(chain)
    counter = _lock_counter(vault)
    if key is not None:
        done = SettlementBatch.objects.filter(cut_key=key).first()
        if done is not None:
            return done
    if SettlementBatch.objects.filter(vault=vault, status=Status.BUILT).exists():
        return None
    trades = list(
        Trade.objects.filter(settlement_status=TradeStatus.MATCHED)
        .select_related("market__base", "market__quote", "maker_account", "taker_account")
        .order_by("id")
        .select_for_update(skip_locked=True, of=("self",))[:max_trades]
    )
    if not trades:
        return None
    deltas = batch_deltas(trades, fee_account=fee_account)
    tree = TradeTree([trade.trade_id for trade in trades])
    batch = SettlementBatch.objects.create(
        vault=vault,
        batch_id=counter.next_batch_id,
        trades_root=_hex(tree.root),
        deltas=deltas_to_json(deltas),
        trade_count=len(trades),
        cut_key=key,
        created_at=now or timezone.now(),
    )
    BatchTrade.objects.bulk_create([BatchTrade(batch=batch, trade=trade) for trade in trades])
    Trade.objects.filter(pk__in=[trade.pk for trade in trades]).update(
        settlement_status=TradeStatus.BATCHED
    )
    counter.next_batch_id += 1
    counter.save(update_fields=["next_batch_id"])
    _announce([trade.pk for trade in trades], batch_id=batch.batch_id)
    metrics.BATCHES.labels("built").inc()
    log.info("settlement: cut batch %s with %d trades", batch.batch_id, len(trades))
    return batch


def _announce(trade_pks: list[int], **details: object) -> None:
    """After commit, tell each trade's maker and taker its new settlement status (/ws/v1/user)."""

    def send() -> None:
        from exchange.realtime.events import publish_settlement_status

        trades = Trade.objects.filter(pk__in=trade_pks).select_related("market")
        publish_settlement_status(trades, **details)

    transaction.on_commit(send)


def _batch_trades(batch: SettlementBatch):  # type: ignore[no-untyped-def]
    return Trade.objects.filter(pk__in=BatchTrade.objects.filter(batch=batch).values("trade_id"))


def _live_batch(batch_pk: int) -> SettlementBatch:
    try:
        batch = SettlementBatch.objects.select_for_update().get(pk=batch_pk)
    except SettlementBatch.DoesNotExist:
        raise BatchAbandoned(f"batch row {batch_pk} does not exist") from None
    if batch.status == Status.FAILED:
        raise BatchAbandoned(f"batch {batch.batch_id} (row {batch_pk}) already failed")
    return batch


@dataclass(frozen=True, slots=True)
class Submitted:
    batch: SettlementBatch
    confirmations: int
    already_settled: bool


def batch_submit(*, batch_pk: int) -> Submitted:
    """Settle the batch on chain (or find it there already) and record where it landed.

    Safe to call again at any point: the vault client recognises a batch already on chain.
    Raises SettlementRejected / BatchConflict / UnbalancedDeltas (non-retryable), BatchAbandoned
    for a batch that already failed, and anything else (RPC trouble) for a retry.
    """
    SettlementBatch.objects.filter(pk=batch_pk).update(attempts=F("attempts") + 1)
    chain = clients()
    with transaction.atomic():
        # The row lock makes a concurrent attempt (a retry while a zombie attempt is still
        # sending) and batch_mark_failed wait for this one to finish with the chain.
        batch = _live_batch(batch_pk)
        if batch.status == Status.CONFIRMED:
            return Submitted(batch, batch.confirmations, already_settled=True)
        root = bytes.fromhex(batch.trades_root[2:])
        try:
            with chain.breaker.guard():
                settlement = chain.vault.settle_batch(
                    batch.batch_id,
                    root,
                    deltas_from_json(batch.deltas),
                    sender=chain.config.operator,
                )
                confirmations = chain.vault.confirmations(settlement.tx)
        except ContractRevert as exc:
            if exc.name in REJECTING_REVERTS:
                raise SettlementRejected(f"batch {batch.batch_id}: {exc}") from exc
            raise
        tx = settlement.tx
        first = batch.status == Status.BUILT
        batch.status = Status.SUBMITTED
        batch.tx_hash, batch.block_number, batch.block_hash = (
            tx.tx_hash,
            tx.block_number,
            tx.block_hash,
        )
        batch.confirmations = confirmations
        batch.submitted_at = batch.submitted_at or timezone.now()
        batch.error = ""
        batch.save()
        submitted = _batch_trades(batch).filter(settlement_status=TradeStatus.BATCHED)
        announced = list(submitted.values_list("pk", flat=True))
        submitted.update(settlement_status=TradeStatus.SUBMITTED)
        if announced:
            _announce(announced, batch_id=batch.batch_id, tx_hash=tx.tx_hash)
    if first:
        metrics.BATCHES.labels("submitted").inc()
    log.info(
        "settlement: batch %s in block %s (%s, %d confirmations%s)",
        batch.batch_id,
        tx.block_number,
        tx.tx_hash,
        confirmations,
        ", already settled" if settlement.already_settled else "",
    )
    return Submitted(batch, confirmations, settlement.already_settled)


def batch_confirmations(*, batch_pk: int) -> int:
    """Blocks on top of the batch's settlement (0: not on the canonical chain any more)."""
    chain = clients()
    batch = SettlementBatch.objects.get(pk=batch_pk)
    if batch.status == Status.CONFIRMED:
        return batch.confirmations
    if batch.status != Status.SUBMITTED or not batch.tx_hash:
        return 0
    tx = TxResult(batch.tx_hash, batch.block_number or 0, batch.block_hash, 0)
    with chain.breaker.guard():
        confirmations = chain.vault.confirmations(tx)
        if confirmations == 0:
            # A reorg may have moved the settlement into another block; look for it.
            found = chain.vault.find_settlement(batch.batch_id)
            if found is not None and _hex(found.trades_root) == batch.trades_root:
                tx = found.tx
                confirmations = chain.vault.confirmations(tx)
    SettlementBatch.objects.filter(pk=batch_pk, status=Status.SUBMITTED).update(
        confirmations=confirmations,
        tx_hash=tx.tx_hash,
        block_number=tx.block_number,
        block_hash=tx.block_hash,
    )
    return confirmations


@transaction.atomic
def batch_mark_confirmed(*, batch_pk: int, confirmations: int) -> SettlementBatch:
    batch = _live_batch(batch_pk)
    if batch.status == Status.CONFIRMED:
        return batch
    if batch.status != Status.SUBMITTED:
        raise BatchAbandoned(f"batch {batch.batch_id} is {batch.status}, not submitted")
    now = timezone.now()
    batch.status = Status.CONFIRMED
    batch.confirmations = max(batch.confirmations, confirmations)
    batch.confirmed_at = now
    batch.reopened_at = None
    batch.save(
        update_fields=["status", "confirmations", "confirmed_at", "reopened_at", "updated_at"]
    )
    trades = _batch_trades(batch)
    for created_at in trades.values_list("created_at", flat=True):
        metrics.SETTLEMENT_LATENCY.observe(max(0.0, (now - created_at).total_seconds()))
    trades.update(settlement_status=TradeStatus.CONFIRMED)
    _announce(
        list(trades.values_list("pk", flat=True)),
        batch_id=batch.batch_id,
        tx_hash=batch.tx_hash,
        confirmations=batch.confirmations,
    )
    metrics.BATCHES.labels("confirmed").inc()
    log.info("settlement: batch %s confirmed (%d trades)", batch.batch_id, batch.trade_count)
    return batch


@transaction.atomic
def batch_mark_failed(
    *, batch_pk: int, reason: str, id_used_on_chain: bool = False
) -> SettlementBatch:
    """The contract rejected the batch: fail it, put its trades back in the queue, and give
    its batch id back so the next batch takes it (the contract never consumed it).

    ``id_used_on_chain``: the chain holds another batch under this id (BatchConflict), so the
    id is not given back. A trade that has now been in SETTLEMENT_MAX_TRADE_ATTEMPTS failed
    batches is given up on (``failed``) instead of re-queued: an operator has to look at it.
    """
    batch = SettlementBatch.objects.select_for_update().get(pk=batch_pk)
    if batch.status == Status.FAILED:
        return batch
    if batch.status == Status.CONFIRMED:
        raise BatchAbandoned(f"batch {batch.batch_id} is confirmed; it cannot fail")
    counter = _lock_counter(batch.vault)
    batch.status = Status.FAILED
    batch.error = reason[:2000]
    batch.save(update_fields=["status", "error", "updated_at"])

    max_attempts = int(setting("SETTLEMENT_MAX_TRADE_ATTEMPTS", 3))
    trade_ids = list(BatchTrade.objects.filter(batch=batch).values_list("trade_id", flat=True))
    failures = dict.fromkeys(trade_ids, 0)
    for trade_id in BatchTrade.objects.filter(
        trade_id__in=trade_ids, batch__status=Status.FAILED
    ).values_list("trade_id", flat=True):
        failures[trade_id] += 1
    given_up = [pk for pk, count in failures.items() if count >= max_attempts]
    requeue = [pk for pk, count in failures.items() if count < max_attempts]
    Trade.objects.filter(pk__in=requeue).update(settlement_status=TradeStatus.MATCHED)
    Trade.objects.filter(pk__in=given_up).update(settlement_status=TradeStatus.FAILED)
    _announce(trade_ids, batch_id=batch.batch_id)

    later = SettlementBatch.objects.filter(vault=batch.vault, batch_id__gt=batch.batch_id).exclude(
        status=Status.FAILED
    )
    if not id_used_on_chain and counter.next_batch_id == batch.batch_id + 1 and not later.exists():
        counter.next_batch_id = batch.batch_id
        counter.save(update_fields=["next_batch_id"])
    elif not id_used_on_chain:
        log.error("settlement: batch %s failed but later batches exist", batch.batch_id)

    metrics.BATCHES.labels("failed").inc()
    metrics.BATCH_FAILURES.inc()
    if given_up:
        metrics.TRADES_SETTLEMENT_FAILED.inc(len(given_up))
    # ERROR: this is the alert. A rejected batch means the ledger and the vault disagree.
    log.error(
        "settlement: batch %s FAILED (%s); %d trades re-queued, %d given up after %d attempts",
        batch.batch_id,
        reason,
        len(requeue),
        len(given_up),
        max_attempts,
    )
    return batch
