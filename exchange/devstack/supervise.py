"""`make run` as a process manager: a child that exits is started again after a backoff, and
the terminal says so, as systemd does with the units in ops/systemd/ (same policy)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from exchange.backoff import Backoff
from exchange.devstack.procs import ManagedProcess, say

# A child that ran this long before it exited starts the delays again (systemd: RestartSec=1s,
# RestartSteps=5, RestartMaxDelaySec=30s).
HEALTHY_AFTER = 60.0


def restart_backoff() -> Backoff:
    """1, 2, 4 ... 30 s between restarts of a child that keeps exiting."""
    return Backoff(initial=1.0, factor=2.0, maximum=30.0)


def write_pid(pid_dir: Path, proc: ManagedProcess) -> None:
    """<pid_dir>/<name>.pid: how an operator (or a fault-injection run) finds a child."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    (pid_dir / f"{proc.name}.pid").write_text(f"{proc.popen.pid}\n")


class Supervisor:
    def __init__(
        self,
        procs: Sequence[ManagedProcess],
        pid_dir: Path,
        backoff: Callable[[], Backoff] = restart_backoff,
    ) -> None:
        self.procs = list(procs)
        self.pid_dir = pid_dir
        self.backoff = {proc.name: backoff() for proc in self.procs}
        self.restart_at: dict[str, float] = {}
        self.restarts = dict.fromkeys(self.backoff, 0)

    def check(self, now: float) -> None:
        """One pass: schedule a restart for each child that exited, start those that are due."""
        for proc in self.procs:
            if proc.alive:
                continue
            due = self.restart_at.get(proc.name)
            if due is None:
                uptime = now - proc.started_at
                if uptime >= HEALTHY_AFTER:
                    self.backoff[proc.name].reset()
                delay = self.backoff[proc.name].next_delay()
                self.restart_at[proc.name] = now + delay
                say(
                    f"{proc.name} exited with code {proc.popen.returncode} after {uptime:.0f}s;"
                    f" restarting in {delay:.0f}s; see {proc.log_path}"
                )
            elif now >= due:
                del self.restart_at[proc.name]
                proc.respawn()
                self.restarts[proc.name] += 1
                write_pid(self.pid_dir, proc)
                count = self.restarts[proc.name]
                say(f"{proc.name} restarted (pid {proc.popen.pid}, restart {count})")

    def run(self, stopping: Callable[[], bool], every: float = 0.2) -> int:
        while not stopping():
            self.check(time.monotonic())
            time.sleep(every)
        say("Ctrl-C received")
        return 0
