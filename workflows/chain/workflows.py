"""ChainWatcher: scan the vault's chain for deposits, forever. Deterministic: the scan is an
activity called by name; pauses are workflow timers."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.chain import types

# RPC outages surface as retries of this activity (fast failures while the worker's circuit
# breaker is open), capped so the watcher resumes within seconds of the node coming back.
SCAN_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)


@workflow.defn(name=types.WATCHER_WORKFLOW)
class ChainWatcher:
    def __init__(self) -> None:
        self.scanned_block = -1

    @workflow.query
    def last_scanned_block(self) -> int:
        return self.scanned_block

    @workflow.run
    async def run(self, data: types.WatcherInput) -> None:
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
            if result.caught_up:
                await workflow.sleep(timedelta(seconds=data.poll_seconds))
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(data)
