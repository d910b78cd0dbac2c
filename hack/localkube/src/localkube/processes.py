"""Starting and stopping the control plane's processes so that none is ever left behind.

Each process runs in its own process group (its own session), so stopping it also stops
anything it started. Processes of a cluster owned by a test run also get the kernel's
parent-death signal, so even a SIGKILLed pytest takes its control plane with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 10.0

# Our own children, by pid: polled to reap them (no zombies, no ResourceWarning).
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class RunningProcess:
    name: str
    pid: int
    executable: str
    log: Path


def start_process(
    name: str, command: Sequence[str], log: Path, *, die_with_parent: bool
) -> RunningProcess:
    """Start ``command`` in a new session, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,  # noqa: PLW1509
        )
    _children[process.pid] = process
    return RunningProcess(name, process.pid, command[0], log)


def exit_code(process: RunningProcess) -> int | None:
    """The exit code of a child of ours that has exited, else None."""
    child = _children.get(process.pid)
    return None if child is None else child.poll()


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has, it only waits to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return status.rsplit(")", 1)[-1].split()[0] != "Z"


def is_running(process: RunningProcess) -> bool:
    """Alive and still our binary (a recycled pid belonging to something else is not ours)."""
    child = _children.get(process.pid)
    if child is not None:
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    executable = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return pid_alive(process.pid) and executable == process.executable


def stop_processes(processes: Sequence[RunningProcess]) -> None:
    """SIGTERM each process group, in order, then SIGKILL whatever outlives the grace period.

    A second Ctrl-C (or a SIGINT forwarded by a wrapper such as `uv run`) would otherwise
    interrupt the stopping half way; it is held back until everything is stopped.
    """
    with _interrupts_deferred():
        for process in processes:
            _stop(process)


def _stop(process: RunningProcess) -> None:
    if not is_running(process):
        return
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while is_running(process) and time.monotonic() < deadline:
        _reap(process.pid)
        time.sleep(0.05)
    if is_running(process):
        _signal_group(process.pid, signal.SIGKILL)
    _wait_gone(process)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT until the block ends, then raise the KeyboardInterrupt it would have raised."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers; it also gets the SIGINT
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if received:
        raise KeyboardInterrupt


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # the process leads its own group (start_new_session)


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def _wait_gone(process: RunningProcess, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while is_running(process) and time.monotonic() < deadline:
        _reap(process.pid)
        time.sleep(0.05)
    _reap(process.pid)
