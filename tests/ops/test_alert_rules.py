"""The alert rules and monitoring configs: promtool's unit tests pass, the configs are valid, and
every rule is tested both ways and links a runbook section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from exchange.devstack.procs import REPO

OPS = REPO / "ops"
RULES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((OPS / "prometheus" / "tests").glob("*.yml"))
OPERATIONS = REPO / "docs" / "OPERATIONS.md"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: `make deps` installs Debian's prometheus packages"
    return found


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def alert_rules() -> list[dict]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def github_anchor(heading: str) -> str:
    """GitHub's slug of a Markdown heading (lower case, punctuation dropped, spaces to dashes)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_promtool_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS), cwd=OPS / "prometheus")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_and_rules_are_valid() -> None:
    promtool = tool("promtool")
    config = run(promtool, "check", "config", "prometheus.yml", cwd=OPS / "prometheus")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = run(promtool, "check", "rules", *map(str, RULES), cwd=OPS / "prometheus")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_alertmanager_config_is_valid() -> None:
    result = run(tool("amtool"), "check-config", "alertmanager.yml", cwd=OPS / "alertmanager")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_fails_a_wrong_expectation(tmp_path: Path) -> None:
    """The unit tests can fail: a test expecting the ledger alert on a balanced ledger does."""
    wrong = {
        "rule_files": [str(OPS / "prometheus" / "rules" / "clearway.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": "clearway_ledger_imbalance", "values": "0x5"}],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "LedgerImbalance",
                        "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "wrong.yml"
    path.write_text(yaml.safe_dump(wrong))
    result = run(tool("promtool"), "test", "rules", str(path), cwd=tmp_path)
    assert result.returncode != 0
    assert "LedgerImbalance" in result.stdout + result.stderr


def test_every_rule_has_a_firing_and_a_quiet_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "rules without a firing test"
    assert names - quiet == set(), "rules without a quiet test"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_rule_has_severity_for_and_a_runbook_section(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert "for" in rule
    url = rule["annotations"]["runbook_url"]
    document, _, anchor = url.partition("#")
    assert document == "docs/OPERATIONS.md"
    headings = [
        github_anchor(line.lstrip("#"))
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    ]
    assert anchor in headings, f"{url}: no such section in docs/OPERATIONS.md"
