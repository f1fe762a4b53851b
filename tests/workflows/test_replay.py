"""Histories recorded from the integration tests (CLEARWAY_RECORD_HISTORIES=1) replay with the
current workflow code: a change that breaks determinism for running workflows fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.temporal import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_recorded():
    kinds = {path.stem.split("-", 1)[1].rstrip("0123456789") for path in HISTORIES}
    assert {"settlement-scheduler", "chain-watcher", "settlement-batch-"} <= kinds


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_recorded_history_replays_without_non_determinism(path: Path):
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=list(WORKFLOWS)).replay_workflow(history)
