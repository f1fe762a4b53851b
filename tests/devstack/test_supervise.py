"""`make run` restarts a child that exits, after an exponential backoff, and says so."""

from __future__ import annotations

import signal

from exchange.backoff import Backoff
from exchange.devstack.procs import ManagedProcess
from exchange.devstack.supervise import Supervisor


def test_restart_delays_double_up_to_their_cap_and_start_over_after_a_healthy_run(
    tmp_path, capsys
) -> None:
    proc = ManagedProcess.start("crasher", ["sleep", "30"], log_dir=tmp_path)
    supervisor = Supervisor([proc], tmp_path / "run")
    delays = []
    try:
        now = proc.started_at
        for uptime in (0, 0, 0, 0, 0, 0, 0, 60, 5):
            proc.kill(signal.SIGKILL)
            proc.popen.wait(10)
            now = proc.started_at + uptime
            supervisor.check(now)
            delays.append(supervisor.restart_at["crasher"] - now)
            supervisor.check(supervisor.restart_at["crasher"])  # restarted
        # It ran a minute before the 8th exit: a new failure, not the 8th in a row.
        assert delays == [1, 2, 4, 8, 16, 30, 30, 1, 2]
    finally:
        proc.stop()


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
