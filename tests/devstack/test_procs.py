"""A Ctrl-C at the worst moment of starting a child (inside Popen, which waits for the child's
exec) must not leave that child running unseen: `make run`'s clean-up has to find it."""

from __future__ import annotations

import signal
import subprocess

import pytest

from exchange.devstack import procs
from exchange.devstack.procs import ManagedProcess


class Interrupted(Exception):
    pass


def test_a_signal_during_the_spawn_is_held_until_the_child_is_registered(
    tmp_path, monkeypatch
) -> None:
    real_popen = subprocess.Popen

    def popen_then_ctrl_c(*args, **kwargs):  # type: ignore[no-untyped-def]
        child = real_popen(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)  # as if it came while Popen waited for the exec
        return child

    def on_signal(signum: int, frame: object) -> None:
        raise Interrupted

    # A registry of this test's own: the session's anvil must not be stopped by stop_all().
    monkeypatch.setattr(procs, "_running", [])
    monkeypatch.setattr(subprocess, "Popen", popen_then_ctrl_c)
    previous = signal.signal(signal.SIGINT, on_signal)
    try:
        with pytest.raises(Interrupted):
            ManagedProcess.start("sleeper", ["sleep", "30"], log_dir=tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
        monkeypatch.setattr(subprocess, "Popen", real_popen)

    # The caller never got the process, but it is registered, and stop_all() stops it.
    (child,) = procs._running
    assert child.alive
    procs.stop_all()
    assert not child.alive
    assert child not in procs._running
    # The handler in force before the spawn is back.
    assert signal.getsignal(signal.SIGINT) is previous
