"""`make run` restarts a child that exits, after an exponential backoff, and says so."""

from __future__ import annotations

import signal

from exchange.devstack.procs import ManagedProcess
from exchange.devstack.supervise import Backoff, Supervisor


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_healthy_run() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(uptime=0) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(uptime=60) == 1  # it ran a minute: a new failure, not the 8th
    assert backoff.next_delay(uptime=5) == 2


def test_a_killed_child_is_restarted_after_its_delay_with_a_new_pid_file(tmp_path, capsys) -> None:
    proc = ManagedProcess.start("sleeper", ["sleep", "30"], log_dir=tmp_path)
    supervisor = Supervisor([proc], tmp_path / "run", backoff=lambda: Backoff(initial=2))
    first = proc.popen.pid
    try:
        proc.kill(signal.SIGKILL)
        proc.popen.wait(10)
        now = proc.started_at + 5

        supervisor.check(now)  # noticed: restart scheduled in 2 s, not yet started
        assert not proc.alive
        assert "sleeper exited with code -9 after 5s; restarting in 2s" in capsys.readouterr().out
        supervisor.check(now + 1.9)
        assert not proc.alive

        supervisor.check(now + 2)
        assert proc.alive and proc.popen.pid != first
        assert (tmp_path / "run" / "sleeper.pid").read_text() == f"{proc.popen.pid}\n"
        assert f"sleeper restarted (pid {proc.popen.pid}, restart 1)" in capsys.readouterr().out

        supervisor.check(now + 3)  # alive: nothing to do
        assert supervisor.restarts == {"sleeper": 1}
    finally:
        proc.stop()
