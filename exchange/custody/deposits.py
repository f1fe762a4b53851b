"""Custody writes for the chain watcher: scanning the vault's chain block by block, recording
its deposit logs, and crediting each deposit to the ledger once it is deep enough.

The scan checks each block's parent hash against the one it scanned before; a mismatch hands over
to exchange.custody.reorgs, which rewinds the scan and re-checks settlements and payouts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from exchange.accounts.models import Account
from exchange.accounts.services import trader_get_or_create
from exchange.chain import DepositLog
from exchange.custody import metrics
from exchange.custody.blocks import _block_hash, _cursor, _hex
from exchange.custody.chain import ChainClients, clients, setting
from exchange.custody.errors import ChainMoved
from exchange.custody.models import ChainCursor, Deposit, ProcessedBlock
from exchange.custody.reorgs import (
    _reopened,
    _rewind,
    settlements_recheck,
    unscanned_reorg_record,
)
from exchange.ledger.services import credit_deposit
from exchange.markets.models import Asset

log = logging.getLogger(__name__)


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


def _saw_head(cursor: ChainCursor, number: int, block_hash: str) -> None:
    ChainCursor.objects.filter(pk=cursor.pk).update(head_number=number, head_hash=block_hash)
    cursor.head_number, cursor.head_hash = number, block_hash


def _count_reorg(replaced: int, depth: int) -> None:
    # A block ``depth`` deep counts as final (its deposits are credited): a reorg replacing
    # that many scanned blocks took back something we treated as final.
    if replaced >= depth:
        metrics.CHAIN_DEEP_REORGS.inc()


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
        latest = chain.w3.eth.get_block("latest")
        head, head_hash = int(latest["number"]), _hex(latest["hash"])
        cursor = _cursor(chain)
        start = cursor.block_number + 1
        end = min(head, start + max_blocks - 1)
        # A reorg that did not lengthen the chain shows only here, in the last scanned block.
        reorg = bool(cursor.block_hash) and _block_hash(chain, cursor.block_number) != (
            cursor.block_hash
        )
        if reorg:
            ancestor = _rewind(chain, cursor)
            _saw_head(cursor, head, head_hash)
            _count_reorg(cursor.block_number - ancestor, depth)
            metrics.CHAIN_LAST_SCAN.set_to_current_time()
            return ScanResult(start, ancestor, head, 0, 0, reorg=True, reopened=_reopened(chain))
        if cursor.head_hash and cursor.head_number > cursor.block_number:
            now = (
                head_hash if cursor.head_number == head else _block_hash(chain, cursor.head_number)
            )
            if now != cursor.head_hash:
                unscanned_reorg_record(cursor, cursor.head_number, cursor.head_hash, now)
                _saw_head(cursor, head, head_hash)
                return ScanResult(
                    start, cursor.block_number, head, 0, 0, reorg=True, reopened=_reopened(chain)
                )
        _saw_head(cursor, head, head_hash)
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
                _count_reorg(cursor.block_number - ancestor, depth)
                metrics.CHAIN_LAST_SCAN.set_to_current_time()
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
    metrics.CHAIN_HEAD_BLOCK.set(head)
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
    metrics.CHAIN_LAST_SCAN.set_to_current_time()
    return ScanResult(start, tip, head, seen, credited, reorg=False, reopened=_reopened(chain))
