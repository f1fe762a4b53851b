"""Custody writes: cutting and settling trade batches on the vault, and crediting deposits.

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
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from web3.exceptions import BlockNotFound, TransactionNotFound

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.chain import ContractRevert, Delta, DepositLog, TradeTree, TxResult, net_deltas
from exchange.custody import metrics
from exchange.custody.chain import ChainClients, clients, setting
from exchange.custody.errors import (
    AssetNotOnChain,
    BatchAbandoned,
    ChainMoved,
    SettlementRejected,
)
from exchange.custody.models import (
    BatchCounter,
    BatchTrade,
    ChainCursor,
    ChainReorg,
    Deposit,
    ProcessedBlock,
    SettlementBatch,
)
from exchange.ledger.services import credit_deposit
from exchange.markets.models import Asset
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


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


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


# -------------------------------------------------------------------------------- deposits
@dataclass(frozen=True, slots=True)
class ScanResult:
    from_block: int
    to_block: int  # last block scanned (from_block - 1: nothing new)
    head: int
    deposits_seen: int
    deposits_credited: int
    reorg: bool
    # Batches a reorg took off the chain after they were confirmed, back to submitted and
    # waiting for a workflow run to settle them again: (batch_pk, batch_id, reopened key).
    reopened: tuple[tuple[int, int, str], ...] = ()

    @property
    def caught_up(self) -> bool:
        return self.to_block >= self.head


def _block_hash(chain: ChainClients, number: int) -> str | None:
    try:
        return _hex(chain.w3.eth.get_block(number)["hash"])
    except BlockNotFound:
        return None


def _cursor(chain: ChainClients) -> ChainCursor:
    cursor, _ = ChainCursor.objects.get_or_create(
        vault=chain.config.vault,
        defaults={
            "chain_id": chain.w3.eth.chain_id,
            "block_number": chain.config.from_block - 1,
            "block_hash": "",
        },
    )
    return cursor


def _rewind(chain: ChainClients, cursor: ChainCursor) -> int:
    """Move the cursor back to the newest scanned block still on the canonical chain, orphaning
    what was seen above it, and record the reorg. Returns that block's number.

    Seen deposits above the ancestor become orphaned (re-recorded if their log reappears). A
    credited one whose transaction the new chain does not hold is never reversed: it becomes
    ``reorged`` and its account's withdrawals are frozen, in the same transaction, for an
    operator to decide (see ``reorg_resolve``).
    """
    ancestor, ancestor_hash = chain.config.from_block - 1, ""
    canonical: dict[int, str | None] = {}
    for block in cursor.blocks.order_by("-number").iterator():
        found = _block_hash(chain, block.number)
        if found == block.hash:
            ancestor, ancestor_hash = block.number, block.hash
            break
        canonical[block.number] = found
    # A credited deposit whose transaction the new chain mined too (in another block) was only
    # moved: the next scan records where. Only the ones the chain lost are reorged.
    moved = [
        deposit.pk
        for deposit in Deposit.objects.filter(
            vault=cursor.vault, block_number__gt=ancestor, status=Deposit.Status.CREDITED
        )
        if _mined(chain, deposit.tx_hash)
    ]
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(pk=cursor.pk)
        orphaned_blocks = list(cursor.blocks.filter(number__gt=ancestor).order_by("number"))
        dropped = Deposit.objects.filter(vault=cursor.vault, block_number__gt=ancestor)
        orphaned = dropped.filter(status=Deposit.Status.SEEN).update(
            status=Deposit.Status.ORPHANED, confirmations=0
        )
        credited = list(
            dropped.filter(status=Deposit.Status.CREDITED)
            .exclude(pk__in=moved)
            .select_related("account")
            .select_for_update(of=("self",))
        )
        frozen: list[str] = []
        for deposit in credited:
            deposit.status = Deposit.Status.REORGED
            deposit.confirmations = 0
            deposit.save(update_fields=["status", "confirmations", "updated_at"])
            if deposit.account.address not in frozen:
                frozen.append(deposit.account.address)
        # Lock order (account rows by id) as the withdrawal request takes them: no deadlock, and
        # a request that was waiting on the lock sees the flag.
        for account in (
            Account.objects.select_for_update().filter(address__in=frozen).order_by("pk")
        ):
            if not account.withdrawals_frozen:
                account.withdrawals_frozen = True
                account.save(update_fields=["withdrawals_frozen"])
        reorg = ChainReorg.objects.create(
            cursor=cursor,
            ancestor_number=ancestor,
            ancestor_hash=ancestor_hash,
            depth=len(orphaned_blocks),
            old_hashes=[block.hash for block in orphaned_blocks],
            new_hashes=[canonical.get(block.number) for block in orphaned_blocks],
            deposits_orphaned=orphaned,
            credited_deposits=[
                {
                    "deposit": deposit.pk,
                    "reference": deposit.reference,
                    "account": deposit.account.address,
                    "token": deposit.token,
                    "amount": str(deposit.amount),
                }
                for deposit in credited
            ],
            frozen_accounts=frozen,
        )
        cursor.blocks.filter(number__gt=ancestor).delete()
        cursor.block_number, cursor.block_hash = ancestor, ancestor_hash
        cursor.save()
    metrics.CHAIN_REORGS.inc()
    metrics.CHAIN_REORG_DEPTH.observe(reorg.depth)
    metrics.DEPOSITS.labels("orphaned").inc(orphaned)
    if credited:
        metrics.DEPOSITS.labels("reorged").inc(len(credited))
        # CRITICAL: this is the page. Credits the chain no longer backs; their accounts cannot
        # withdraw until an operator decides (ChainReorg in the admin).
        log.critical(
            "chain: reorg of depth %d below block %s removed %d CREDITED deposits (%s); "
            "withdrawals frozen for %s",
            reorg.depth,
            ancestor + 1,
            len(credited),
            ", ".join(f"{d.reference} {d.amount}" for d in credited),
            ", ".join(frozen),
        )
    else:
        # ERROR: a reorg is always worth a look, even one the watcher absorbed.
        log.error(
            "chain: reorg of depth %d below block %s; %d seen deposits orphaned",
            reorg.depth,
            ancestor + 1,
            orphaned,
        )
    return ancestor


def _mined(chain: ChainClients, tx_hash: str) -> bool:
    """Whether the canonical chain holds ``tx_hash``, successful."""
    try:
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return False
    return receipt["blockNumber"] is not None and receipt["status"] == 1


def _reappeared(item: DepositLog) -> Deposit | None:
    """The orphaned or reorged deposit that ``item`` is, back on the chain: the same
    transaction's deposit, possibly at another log index (log indexes count within a block)."""
    return (
        Deposit.objects.select_for_update()
        .filter(
            tx_hash=item.tx_hash,
            status__in=(Deposit.Status.ORPHANED, Deposit.Status.REORGED),
            depositor=item.depositor,
            token=item.token,
            amount=item.amount,
        )
        .order_by("id")
        .first()
    )


def _record(
    chain: ChainClients,
    cursor: ChainCursor,
    headers: list[dict],
    logs: list[DepositLog],
) -> int:
    """Store the scanned headers and their deposits, and advance the cursor; returns the number
    of deposits new to this vault."""
    accounts: dict[str, Account] = {}
    assets: dict[str, Asset | None] = {}
    new = 0
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(pk=cursor.pk)
        for item in logs:
            if item.depositor not in accounts:
                accounts[item.depositor] = trader_get_or_create(address=item.depositor)
            if item.token not in assets:
                assets[item.token] = Asset.objects.filter(token_address__iexact=item.token).first()
            deposit = (
                Deposit.objects.select_for_update()
                .filter(tx_hash=item.tx_hash, log_index=item.log_index)
                .first()
            ) or _reappeared(item)
            if deposit is None:
                deposit = Deposit.objects.create(
                    vault=chain.config.vault,
                    tx_hash=item.tx_hash,
                    log_index=item.log_index,
                    block_number=item.block_number,
                    block_hash=item.block_hash,
                    depositor=item.depositor,
                    token=item.token,
                    account=accounts[item.depositor],
                    asset=assets[item.token],
                    amount=item.amount,
                )
                new += 1
                if assets[item.token] is None:
                    log.warning("chain: deposit %s of unlisted token %s", deposit, item.token)
                continue
            moved = (deposit.block_hash, deposit.log_index) != (item.block_hash, item.log_index)
            if deposit.status == Deposit.Status.ORPHANED:
                # Back on the chain (same block hash too: a reorg there and back): counted
                # from its block again, credited once it is deep enough, under its one ledger
                # reference.
                deposit.status = Deposit.Status.SEEN
            elif deposit.status == Deposit.Status.REORGED:
                # The chain backs the credit again. The account stays frozen: unfreezing is
                # the operator's decision, recorded on the reorg.
                deposit.status = Deposit.Status.CREDITED
                log.error(
                    "chain: reorged deposit %s is back on the chain in block %s; credit backed "
                    "again (account %s stays frozen until an operator decides)",
                    deposit.reference,
                    item.block_number,
                    deposit.account_id,
                )
            elif not moved:
                continue
            deposit.block_number, deposit.block_hash = item.block_number, item.block_hash
            deposit.log_index = item.log_index
            deposit.save(
                update_fields=["block_number", "block_hash", "log_index", "status", "updated_at"]
            )
        ProcessedBlock.objects.bulk_create(
            [
                ProcessedBlock(
                    cursor=cursor,
                    number=int(header["number"]),
                    hash=_hex(header["hash"]),
                    parent_hash=_hex(header["parentHash"]),
                )
                for header in headers
            ],
            ignore_conflicts=True,
        )
        last = headers[-1]
        cursor.block_number, cursor.block_hash = int(last["number"]), _hex(last["hash"])
        cursor.save()
        keep = int(setting("CHAIN_KEEP_BLOCKS", 1000))
        cursor.blocks.filter(number__lte=cursor.block_number - keep).delete()
    metrics.DEPOSITS.labels("seen").inc(new)
    return new


def deposit_credit(*, deposit_pk: int, confirmations: int) -> Deposit:
    """Credit a deposit deep enough in the chain to the ledger, once."""
    with transaction.atomic():
        deposit = (
            Deposit.objects.select_for_update(of=("self",))
            .select_related("account", "asset")
            .get(pk=deposit_pk)
        )
        if deposit.status != Deposit.Status.SEEN or deposit.asset is None:
            return deposit
        entry = credit_deposit(
            account=deposit.account,
            asset=deposit.asset,
            amount=deposit.amount,
            reference=deposit.reference,
            metadata={"block_number": deposit.block_number, "block_hash": deposit.block_hash},
        )
        deposit.status = Deposit.Status.CREDITED
        deposit.journal_entry = entry
        deposit.confirmations = confirmations
        deposit.credited_at = timezone.now()
        deposit.save()
    metrics.DEPOSITS.labels("credited").inc()
    log.info("chain: credited deposit %s (%s)", deposit.reference, deposit.amount)
    return deposit


def chain_scan(*, max_blocks: int, depth: int) -> ScanResult:
    """Scan up to ``max_blocks`` new blocks of the vault's chain, then credit every seen deposit
    that is ``depth`` blocks deep (1: in a block) on the scanned chain.

    Each scanned block's header is kept, and each block's parent hash is checked against the
    previous one, so a reorg rewinds the scan (orphaning the deposits it dropped) rather than
    being scanned over. Confirmed batches and payouts whose block the scanned chain no longer
    has are re-checked against the contract (``settlements_recheck``).
    """
    if max_blocks < 1 or depth < 1:
        raise ValueError("max_blocks and depth must be at least 1")
    chain = clients()
    with chain.breaker.guard():
        head = chain.w3.eth.block_number
        cursor = _cursor(chain)
        start = cursor.block_number + 1
        end = min(head, start + max_blocks - 1)
        # A reorg that did not lengthen the chain shows only here, in the last scanned block.
        reorg = bool(cursor.block_hash) and _block_hash(chain, cursor.block_number) != (
            cursor.block_hash
        )
        if reorg:
            ancestor = _rewind(chain, cursor)
            return ScanResult(start, ancestor, head, 0, 0, reorg=True, reopened=_reopened(chain))
        headers: list[dict] = []
        logs: list[DepositLog] = []
        if start <= end:
            headers = [dict(chain.w3.eth.get_block(n)) for n in range(start, end + 1)]
            parent = cursor.block_hash
            for header in headers:
                if parent and _hex(header["parentHash"]) != parent:
                    if header is headers[0]:
                        reorg = True
                        break
                    raise ChainMoved(f"block {header['number']} changed during the scan")
                parent = _hex(header["hash"])
            if reorg:
                ancestor = _rewind(chain, cursor)
                return ScanResult(
                    start, ancestor, head, 0, 0, reorg=True, reopened=_reopened(chain)
                )
            logs = chain.vault.deposits(start, end)
            hashes = {int(h["number"]): _hex(h["hash"]) for h in headers}
            for item in logs:
                if hashes.get(item.block_number) != item.block_hash:
                    raise ChainMoved(f"block {item.block_number} changed during the scan")
    seen = _record(chain, cursor, headers, logs) if headers else 0
    tip = end if headers else cursor.block_number
    metrics.CHAIN_SCANNED_BLOCK.set(tip)
    metrics.CHAIN_HEAD_LAG.set(max(0, head - tip))
    settlements_recheck(chain=chain)

    credited = 0
    pending = Deposit.objects.filter(
        vault=chain.config.vault, status=Deposit.Status.SEEN, block_number__lte=tip
    ).order_by("id")
    for deposit in pending:
        # Only blocks the watcher has checked count as confirmations.
        confirmations = tip - deposit.block_number + 1
        if confirmations >= depth and deposit.asset_id is not None:
            deposit_credit(deposit_pk=deposit.pk, confirmations=confirmations)
            credited += 1
        elif confirmations != deposit.confirmations:
            Deposit.objects.filter(pk=deposit.pk).update(confirmations=confirmations)
    return ScanResult(start, tip, head, seen, credited, reorg=False, reopened=_reopened(chain))


# ------------------------------------------------------------------ reorgs vs. settlements
def _reopened(chain: ChainClients) -> tuple[tuple[int, int, str], ...]:
    rows = SettlementBatch.objects.filter(
        vault=chain.config.vault, status=Status.SUBMITTED, reopened_at__isnull=False
    ).order_by("batch_id")
    return tuple(
        (batch.pk, batch.batch_id, f"{batch.pk}:{batch.reopened_at.isoformat()}") for batch in rows
    )


def _off_scanned_chain(rows, cursor: ChainCursor):  # type: ignore[no-untyped-def]
    """``rows`` (with block_number and block_hash) whose block number the watcher has scanned
    under another hash: their block left the chain, whenever that happened (before or after the
    watcher saw it, before or after they were marked confirmed)."""
    scanned = ProcessedBlock.objects.filter(cursor=cursor, number=OuterRef("block_number"))
    return (
        rows.filter(block_number__isnull=False, block_number__lte=cursor.block_number)
        .filter(Exists(scanned))
        .exclude(Exists(scanned.filter(hash=OuterRef("block_hash"))))
    )


def _last_reorg_notes(cursor: ChainCursor) -> list[dict]:
    reorg = ChainReorg.objects.filter(cursor=cursor).order_by("-id").first()
    return reorg.settlements_rechecked if reorg is not None else []


def _note_on_last_reorg(cursor: ChainCursor, notes: list[dict]) -> None:
    reorg = ChainReorg.objects.filter(cursor=cursor).order_by("-id").first()
    if reorg is not None and notes:
        reorg.settlements_rechecked = [*reorg.settlements_rechecked, *notes]
        reorg.save(update_fields=["settlements_rechecked"])


def settlements_recheck(*, chain: ChainClients | None = None) -> list[dict]:
    """Re-check against the contract, at the current head, every confirmed batch and payout
    whose block the scanned chain no longer has.

    A batch found settled in another block (re-included) only gets its new location. A batch
    the contract does not hold any more goes back to ``submitted`` (``reopened_at`` set) for a
    new run of its workflow, which the chain watcher starts: the contract's batch id makes sure
    it is applied once. A payout is sent again with the same withdrawal id (which the vault pays
    at most once): the ledger already paid it, so the chain must too. Returns what was done.
    """
    from exchange.withdrawals.models import Withdrawal, WithdrawalTransition

    chain = chain or clients()
    cursor = _cursor(chain)
    notes: list[dict] = []
    batches = _off_scanned_chain(
        SettlementBatch.objects.filter(vault=chain.config.vault, status=Status.CONFIRMED), cursor
    )
    for batch in batches.order_by("batch_id"):
        with chain.breaker.guard():
            found = chain.vault.find_settlement(batch.batch_id)
            landed = (
                found is not None
                and _hex(found.trades_root) == batch.trades_root
                and chain.vault.confirmations(found.tx) > 0
            )
        notes.append(_batch_rechecked(batch.pk, found.tx if landed and found else None))
    payouts = _off_scanned_chain(
        Withdrawal.objects.filter(state=Withdrawal.State.CONFIRMED).select_related(
            "account", "asset"
        ),
        cursor,
    )
    for withdrawal in payouts.order_by("created_at"):
        try:
            with chain.breaker.guard():
                payout = chain.vault.payout(
                    str(withdrawal.id),
                    account=withdrawal.account.address,
                    token=withdrawal.asset.token_address,
                    amount=int(withdrawal.amount),
                    to=withdrawal.destination,
                    sender=chain.config.operator,
                )
        except ContractRevert as exc:
            # The vault cannot pay what the ledger already paid out: only an operator can
            # settle this (e.g. the same reorg removed the deposit that funded it). Re-checked
            # on every scan; alerted once per reason.
            note = {"withdrawal": str(withdrawal.id), "outcome": f"repay refused: {exc}"}
            if note not in _last_reorg_notes(cursor):
                log.critical(
                    "chain: confirmed payout %s left the chain and cannot be paid again: %s",
                    withdrawal.id,
                    exc,
                )
                notes.append(note)
            continue
        tx = payout.tx
        outcome = "re-included" if payout.already_paid else "paid again"
        with transaction.atomic():
            Withdrawal.objects.filter(pk=withdrawal.pk).update(
                tx_hash=tx.tx_hash,
                block_number=tx.block_number,
                block_hash=tx.block_hash,
                updated_at=timezone.now(),
            )
            WithdrawalTransition.objects.create(
                withdrawal=withdrawal,
                from_state=withdrawal.state,
                to_state=withdrawal.state,
                actor="chain-watcher",
                note=f"payout left the chain in a reorg; {outcome}: {tx.tx_hash}",
                at=timezone.now(),
            )
        log.error("chain: confirmed payout %s left the chain; %s in %s", withdrawal.id, outcome,
                  tx.tx_hash)  # fmt: skip
        notes.append({"withdrawal": str(withdrawal.id), "outcome": outcome, "tx": tx.tx_hash})
    _note_on_last_reorg(cursor, notes)
    return notes


@transaction.atomic
def _batch_rechecked(batch_pk: int, tx: TxResult | None) -> dict:
    batch = SettlementBatch.objects.select_for_update().get(pk=batch_pk)
    if batch.status != Status.CONFIRMED:
        return {"batch": batch.batch_id, "outcome": f"now {batch.status}"}
    if tx is not None:
        batch.tx_hash, batch.block_number, batch.block_hash = (
            tx.tx_hash,
            tx.block_number,
            tx.block_hash,
        )
        batch.save(update_fields=["tx_hash", "block_number", "block_hash", "updated_at"])
        log.warning("settlement: confirmed batch %s re-included in block %s", batch.batch_id,
                    tx.block_number)  # fmt: skip
        return {"batch": batch.batch_id, "outcome": "re-included", "tx": tx.tx_hash}
    batch.status = Status.SUBMITTED
    batch.confirmations = 0
    batch.reopened_at = timezone.now()
    batch.save(update_fields=["status", "confirmations", "reopened_at", "updated_at"])
    trades = _batch_trades(batch)
    trades.update(settlement_status=TradeStatus.SUBMITTED)
    _announce(list(trades.values_list("pk", flat=True)), batch_id=batch.batch_id)
    metrics.BATCHES.labels("reopened").inc()
    # ERROR: the alert. The chain lost a settlement the exchange had confirmed; its workflow
    # settles it again (and later batches wait for it: the contract takes ids in order).
    log.error(
        "settlement: CONFIRMED batch %s left the chain in a reorg; settling it again",
        batch.batch_id,
    )
    return {"batch": batch.batch_id, "outcome": "reopened"}


# ------------------------------------------------------------------- operator decisions
@transaction.atomic
def reorg_resolve(*, reorg: ChainReorg, actor: str, note: str, unfreeze: bool) -> ChainReorg:
    """Record an operator's decision on a reorg; with ``unfreeze``, the accounts it froze may
    withdraw again (unless another unresolved reorg froze them too)."""
    reorg = ChainReorg.objects.select_for_update().get(pk=reorg.pk)
    if reorg.resolved_at is None:
        reorg.resolved_at = timezone.now()
        reorg.resolved_by = actor[:160]
    reorg.resolution = "\n".join(filter(None, [reorg.resolution, note]))
    reorg.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    if unfreeze:
        for address in reorg.frozen_accounts:
            others = ChainReorg.objects.filter(
                resolved_at__isnull=True, frozen_accounts__contains=[address]
            )
            if not others.exists():
                Account.objects.filter(address=address).update(withdrawals_frozen=False)
    log.warning("chain: reorg %s resolved by %s: %s", reorg.pk, actor, note)
    return reorg


@transaction.atomic
def account_withdrawals_unfreeze(*, account: Account, actor: str, note: str) -> Account:
    """Let a frozen account withdraw again, resolving the open reorgs that froze it."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    for reorg in ChainReorg.objects.filter(
        resolved_at__isnull=True, frozen_accounts__contains=[account.address]
    ):
        reorg_resolve(reorg=reorg, actor=actor, note=note, unfreeze=False)
    account.withdrawals_frozen = False
    account.save(update_fields=["withdrawals_frozen"])
    log.warning("accounts: %s withdrawals unfrozen by %s: %s", account.address, actor, note)
    return account
