"""ChainWatcher: scan the vault's chain for deposits, forever. Deterministic: the scan is an
activity called by name; pauses are workflow timers.

A scan can report confirmed batches that a reorg took off the chain (reopened by custody); the
watcher starts a new run of each one's BatchSettlement workflow, which settles it again (the
contract's batch id guards against applying it twice)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.chain import types
    from workflows.settlement.workflows import start_batch_settlement

# RPC outages surface as retries of this activity (fast failures while the worker's circuit
# breaker is open), capped so the watcher resumes within seconds of the node coming back.
SCAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
# Reopenings remembered across continue-as-new (a reopened batch is confirmed again within a
# few scans; this only has to outlive that).
RESTARTED_MEMORY = 50


@workflow.defn(name=types.WATCHER_WORKFLOW)
class ChainWatcher:
    def __init__(self) -> None:
        self.scanned_block = -1

    @workflow.query
    def last_scanned_block(self) -> int:
        return self.scanned_block

    @workflow.run
    async def run(self, data: types.WatcherInput) -> None:
        restarted = list(data.restarted)
        for _ in range(data.iterations_per_run):
            result = await workflow.execute_activity(
                types.SCAN,
                types.ScanInput(),
                result_type=types.ScanOutput,
                start_to_close_timeout=timedelta(seconds=120),
                heartbeat_timeout=timedelta(seconds=5),
                retry_policy=SCAN_RETRY,
            )
            self.scanned_block = result.to_block
            for batch in result.reopened:
                if batch.key not in restarted and await self._settle_again(batch, data):
                    restarted = [*restarted, batch.key][-RESTARTED_MEMORY:]
            if result.caught_up:
                await workflow.sleep(timedelta(seconds=data.poll_seconds))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            types.WatcherInput(
                poll_seconds=data.poll_seconds,
                iterations_per_run=data.iterations_per_run,
                restarted=restarted,
            )
        )

    async def _settle_again(self, batch: types.ReopenedBatch, data: types.WatcherInput) -> bool:
        # False: its previous run has not closed yet (it just marked the batch confirmed); the
        # next scan reports the batch again.
        started = await start_batch_settlement(
            batch.batch_pk,
            batch.batch_id,
            poll_seconds=data.poll_seconds,
            workflow_id=batch.workflow_id,
            status="submitted",
        )
        if started:
            workflow.logger.warning("batch %s left the chain; settling it again", batch.batch_id)
        return started
