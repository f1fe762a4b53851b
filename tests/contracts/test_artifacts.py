"""The committed contracts/build artifacts are what contracts/src compiles to."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_check(repo: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; the contracts need it to compile")
    return subprocess.run(
        [node, str(repo / "contracts" / "compile.js"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_committed_artifacts_match_a_fresh_compile():
    result = run_check(REPO)
    assert result.returncode == 0, result.stderr


def test_the_check_fails_when_a_source_changes(tmp_path: Path):
    shutil.copytree(REPO / "contracts", tmp_path / "contracts")
    (tmp_path / "node_modules").symlink_to(REPO / "node_modules")
    source = tmp_path / "contracts" / "src" / "ClearwayVault.sol"
    source.write_text(source.read_text() + "\n// an edit that changes the metadata hash\n")

    result = run_check(tmp_path)

    assert result.returncode == 1
    assert "ClearwayVault.json differs" in result.stderr
