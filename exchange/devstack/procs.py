"""Child processes with their own log file and process group, and port helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Local state (database files, chain state, logs); tests point it elsewhere to stay isolated.
VAR = Path(os.environ.get("CLEARWAY_VAR_DIR", REPO / "var"))


class StackError(RuntimeError):
    """A service could not be started; the message says what to do about it."""


def say(message: str) -> None:
    print(f"[clearway] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool], *, timeout: float, what: str, proc: ManagedProcess | None = None
) -> None:
    """Wait for ``ready()``; if it never comes (or Ctrl-C), stop ``proc`` before raising: a
    service left half-started would be taken for one already running by the next run."""
    try:
        _wait(ready, timeout=timeout, what=what, proc=proc)
    except BaseException:
        if proc is not None:
            proc.stop()
        raise


def _wait(
    ready: Callable[[], bool], *, timeout: float, what: str, proc: ManagedProcess | None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.popen.poll() is not None:
            raise StackError(
                f"{what} exited with code {proc.popen.returncode}; see {proc.log_path}"
            )
        time.sleep(0.1)
    raise StackError(
        f"{what} was not ready after {timeout:.0f}s" + (f"; see {proc.log_path}" if proc else "")
    )


@dataclass
class ManagedProcess:
    """A child started in its own session so that stopping it also stops its children; it
    remembers how it was started so that a supervisor can start it again."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    started_at: float = field(default_factory=time.monotonic)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> ManagedProcess:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        # A Ctrl-C raised inside Popen (it waits for the child's exec) or before the caller
        # holds the result would leave a running child that nobody stops: hold the signal
        # until the child is registered, so stop_all() can always find it.
        with _signals_held():
            popen = _spawn(list(argv), log_path, env or {}, cwd)
            proc = cls(name, popen, log_path, list(argv), dict(env or {}), cwd)
            _running.append(proc)
        return proc

    def respawn(self) -> None:
        """Start it again (after it exited), the same way, logging to the same file."""
        assert not self.alive, f"{self.name} still runs"
        with _signals_held():
            self.popen = _spawn(self.argv, self.log_path, self.env, self.cwd)
            self.started_at = time.monotonic()
            if self not in _running:
                _running.append(self)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (used by fault-injection tests)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        if self in _running:
            _running.remove(self)
        for callback in self.on_stop:
            callback()


def _spawn(argv: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **env},
            start_new_session=True,
        )


# Every child started by this process and not stopped yet, newest last.
_running: list[ManagedProcess] = []


def stop_all() -> None:
    """Stop every child still running, newest first: the last line of defence of a command that
    was interrupted between starting a child and handing it to whoever stops it."""
    for proc in reversed(list(_running)):
        proc.stop()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM arriving inside the block are delivered when it ends (main thread
    only: Python runs signal handlers there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in held:
            signal.raise_signal(sig)
