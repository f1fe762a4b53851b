"""A deliberately hanging test, kept out of the suite (the file name is not test_*.py): it shows
what a hang looks like under the per-test timeout. Run it alone:

    make test PYTEST_ARGS="tests/hang_demo.py -o timeout=10 -o faulthandler_timeout=5"

faulthandler dumps every thread's stack at 5 s, then pytest-timeout fails the test at 10 s with
the hanging frame, and the run goes on to the next test."""

from __future__ import annotations

import threading


def test_a_wait_that_never_ends() -> None:
    threading.Event().wait()  # nobody sets it


def test_the_next_test_still_runs() -> None:
    assert "the run went on"
