"""hack/tilt/restart-on-sync.sh, the command of the live-updated containers: it restarts the
process when live update touches its marker, passes SIGTERM on, and keeps a crash a crash.
Run here with the machine's sh, as the images' /bin/sh runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localkube.waiting import wait_for

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "tilt" / "restart-on-sync.sh"
# Writes its pid to the file it is given, one line per start, then waits to be stopped.
PROCESS = "import os, sys, time; open(sys.argv[1], 'a').write(f'{os.getpid()}\\n'); time.sleep(300)"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """restart-on-sync.sh running PROCESS; its pid log and the marker file."""
    log, marker = tmp_path / "starts", tmp_path / "marker"
    command = [sys.executable, "-c", PROCESS, str(log)]
    process = subprocess.Popen(
        ["sh", "-c", SCRIPT.read_text(), "restart-on-sync", *command],
        env={**os.environ, "RESTART_MARKER": str(marker)},
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(started(log)) == 1, timeout=30, what="the first start")
        yield process, log, marker
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        for pid in started(log):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_touching_the_marker_restarts_the_process(
    supervised: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, log, marker = supervised
    (first,) = started(log)
    marker.touch()
    wait_for(lambda: len(started(log)) == 2, timeout=30, what="a second start")
    assert not alive(first)
    assert not marker.exists()  # consumed: one touch, one restart
    assert process.poll() is None  # the container goes on


def test_sigterm_reaches_the_process_and_ends_the_container(
    supervised: tuple[subprocess.Popen[str], Path, Path],
) -> None:
    process, log, _ = supervised
    (child,) = started(log)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    wait_for(lambda: not alive(child), timeout=10, what="the process to stop")


def test_a_process_that_exits_by_itself_ends_the_container_with_its_status(
    tmp_path: Path,
) -> None:
    completed = subprocess.run(
        ["sh", "-c", SCRIPT.read_text(), "restart-on-sync", "sh", "-c", "exit 3"],
        env={**os.environ, "RESTART_MARKER": str(tmp_path / "marker")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 3
