"""Custody writes for reorgs: rewinding the scan past blocks that left the chain, re-checking
the confirmed settlements and payouts whose block left it, and recording operators' decisions.

A reorg never reverses a credited deposit: the deposit becomes ``reorged`` and its account's
withdrawals are frozen until an operator decides (``reorg_resolve``).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from web3.exceptions import TransactionNotFound

from exchange.accounts.models import Account
from exchange.chain import ContractRevert, TxResult
from exchange.custody import metrics
from exchange.custody.blocks import _block_hash, _cursor, _hex
from exchange.custody.chain import ChainClients, clients
from exchange.custody.models import (
    ChainCursor,
    ChainReorg,
    Deposit,
    ProcessedBlock,
    SettlementBatch,
)
from exchange.custody.settlement import _announce, _batch_trades
from exchange.trading.models import Trade

log = logging.getLogger(__name__)

Status = SettlementBatch.Status
TradeStatus = Trade.SettlementStatus


# ------------------------------------------------------------------ rewinding the scan
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


def unscanned_reorg_record(
    cursor: ChainCursor, number: int, old_hash: str, new_hash: str | None
) -> ChainReorg:
    """Record a reorg of blocks above the scanned ones: the head the last scan saw (``number``,
    ``old_hash``) is no longer on the chain. Nothing recorded changes (those blocks are scanned
    on the new chain as usual), but a reorg is always worth a look, and counted."""
    reorg = ChainReorg.objects.create(
        cursor=cursor,
        ancestor_number=cursor.block_number,
        ancestor_hash=cursor.block_hash,
        depth=0,
        old_hashes=[old_hash],
        new_hashes=[new_hash],
    )
    metrics.CHAIN_REORGS.inc()
    log.error(
        "chain: reorg of blocks not scanned yet: block %s was %s, now %s (scanned up to %s)",
        number,
        old_hash,
        new_hash,
        cursor.block_number,
    )
    return reorg


def _mined(chain: ChainClients, tx_hash: str) -> bool:
    """Whether the canonical chain holds ``tx_hash``, successful."""
    try:
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return False
    return receipt["blockNumber"] is not None and receipt["status"] == 1


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
