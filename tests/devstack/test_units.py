"""The deployment units restart like `make run`'s supervisor does, and run what `make run` runs."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from exchange.devstack import stack
from exchange.devstack.supervise import restart_backoff

UNITS = sorted((Path(__file__).parents[2] / "ops" / "systemd").glob("*.service"))


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_restarts_with_the_supervisors_backoff(path: Path) -> None:
    service = unit(path)["Service"]
    policy = restart_backoff()
    assert service["Restart"] == "always"
    assert seconds(service["RestartSec"]) == policy.initial
    assert seconds(service["RestartMaxDelaySec"]) == policy.maximum
    # systemd spreads RestartSteps steps between the two; ours doubles: 1 * 2**5 >= 30.
    assert policy.initial * policy.factor ** int(service["RestartSteps"]) >= policy.maximum


def test_every_app_process_of_make_run_has_a_unit(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(stack, "VAR", tmp_path)  # app_processes prepares a metrics folder there
    ours = " ".join(" ".join(argv) for _, argv in stack.app_processes(1, 2))
    units = " ".join(unit(path)["Service"]["ExecStart"] for path in UNITS)
    for program in ("gunicorn exchange.wsgi", "uvicorn exchange.asgi", "-m workers.matching",
                    "-m workers.temporal"):  # fmt: skip
        assert program in ours and program in units, program
