"""Chain watcher activity: thin and synchronous; rescanning is harmless (deposits are recorded
once per (tx_hash, log_index) and credited once per ledger reference)."""

from __future__ import annotations

from temporalio import activity

from workflows.activity_support import django_activity, heartbeating
from workflows.chain import types


@activity.defn(name=types.SCAN)
@django_activity
def scan(data: types.ScanInput) -> types.ScanOutput:
    from exchange.custody import deposits
    from exchange.custody.chain import setting
    from workflows.settlement.types import batch_workflow_id

    max_blocks = data.max_blocks or int(setting("CHAIN_SCAN_MAX_BLOCKS", 500))
    with heartbeating():
        result = deposits.chain_scan(
            max_blocks=max_blocks, depth=int(setting("CONFIRMATION_DEPTH", 1))
        )
    return types.ScanOutput(
        from_block=result.from_block,
        to_block=result.to_block,
        head=result.head,
        deposits_seen=result.deposits_seen,
        deposits_credited=result.deposits_credited,
        reorg=result.reorg,
        caught_up=result.caught_up,
        reopened=[
            types.ReopenedBatch(
                batch_pk=pk,
                batch_id=batch_id,
                key=key,
                workflow_id=batch_workflow_id(
                    batch_id, str(setting("TEMPORAL_WORKFLOW_ID_PREFIX", ""))
                ),
            )
            for pk, batch_id, key in result.reopened
        ],
    )


ACTIVITIES = [scan]
