"""Workflow histories recorded from the integration tests (CLEARWAY_RECORD_HISTORIES=1 pytest
tests/withdrawals) replay with the current workflow code: a change that breaks determinism for
withdrawals already running fails here, in CI, before it reaches a worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.withdrawals import WORKFLOWS

from .support import HISTORIES, collect_garbage

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_of_every_path_are_recorded():
    assert {path.stem for path in RECORDED} >= {
        "auto-paid", "approved-paid", "rejected", "cancelled", "expired", "deep-confirmation",
        "crash-mid-wait", "crash-mid-pay",
    }  # fmt: skip


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_recorded_history_replays_without_non_determinism(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    collect_garbage()
    result = await Replayer(workflows=list(WORKFLOWS)).replay_workflow(history)
    assert result.replay_failure is None
