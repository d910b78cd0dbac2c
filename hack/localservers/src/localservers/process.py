"""Child server processes that never outlive their owner."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

_RUNNING: set[ServerProcess] = set()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process's first thread alone (its event loop, in an
    asyncio server), without what its other threads used."""
    for thread in psutil.Process(pid).threads():
        if thread.id == pid:  # the first thread's id is the process's
            return float(thread.user_time + thread.system_time)
    raise ProcessLookupError(f"process {pid} has no main thread")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process and of every process under it, the exited ones included.

    A server such as PostgreSQL does its work in child processes: long-lived ones (a
    connection's backend, the WAL writer) and short-lived ones (autovacuum workers), whose
    time the kernel adds to their parent's children times once the parent has reaped them.
    A process that exits between two reads may be missed by one of them: a reading, not an
    account.
    """
    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


class ServerProcess:
    """A server started in its own process group, its output in a log file.

    Stopping signals the whole group (so helpers it forks go too); anything still running when
    the interpreter exits is killed by an atexit hook, even when a test failed.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.preexec_fn = preexec_fn
        self.stop_signal = stop_signal
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
            preexec_fn=self.preexec_fn,  # noqa: PLW1509 - only drops privileges for PostgreSQL
        )
        log.close()
        _RUNNING.add(self)

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self._signal_group(self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(5)
        _RUNNING.discard(self)

    def kill(self) -> None:
        """SIGKILL the whole group, as an OOM kill or a node loss would: no clean shutdown."""
        if self.popen is not None and self.popen.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(5)
        _RUNNING.discard(self)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it holds; fail with the server's log if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{what} exited early:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)


@atexit.register
def _stop_all() -> None:
    for process in list(_RUNNING):
        process.stop(timeout=5)
