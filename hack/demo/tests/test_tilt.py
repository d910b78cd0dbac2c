"""`python -m demo.tilt`'s choices that need no node: tilt's command line, its environment,
and which cluster's node it takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.tilt import holder_running, holds_the_node, tilt_command, tilt_environment
from localkube.kps import CHART_ENV
from localkube.processes import RunningProcess
from localkube.state import ClusterState
from localkube.tools import tilt_binary

TILT = Path("/cache/bin/tilt")


def test_tilt_ci_gets_a_timeout_unless_given_one() -> None:
    assert tilt_command("ci", [], TILT) == ["/cache/bin/tilt", "ci", "--timeout=30m"]
    assert tilt_command("ci", ["--timeout=5m"], TILT) == ["/cache/bin/tilt", "ci", "--timeout=5m"]
    assert tilt_command("up", ["--stream"], TILT) == ["/cache/bin/tilt", "up", "--stream"]


def test_only_the_holders_admin_kubeconfig_holds_the_node(tmp_path: Path) -> None:
    holder = tmp_path / "cluster"
    holder.mkdir()
    assert holds_the_node(holder / "admin.kubeconfig", holder)
    assert not holds_the_node(tmp_path / "other" / "admin.kubeconfig", holder)
    assert not holds_the_node(holder / "admin.kubeconfig", None)


def cluster_state(directory: Path, pid: int) -> ClusterState:
    directory.mkdir(parents=True, exist_ok=True)
    process = RunningProcess("etcd", pid, sys.executable, directory / "etcd.log")
    state = ClusterState(directory, "https://127.0.0.1:6443", directory / "kc", (process,), True)
    state.save()
    return state


def test_a_holder_whose_processes_stopped_does_not_run(tmp_path: Path) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    cluster_state(tmp_path / "stopped", exited.pid)
    assert not holder_running(tmp_path / "stopped")
    assert not holder_running(tmp_path / "never-started")


def test_a_holder_whose_processes_run_runs(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as running:
        try:
            # Until it has exec'd, the child's command line is its parent's.
            assert running.stdout is not None
            assert running.stdout.readline() == "started\n"
            cluster_state(tmp_path / "running", running.pid)
            assert holder_running(tmp_path / "running")
        finally:
            running.kill()


@pytest.mark.tilt  # builds tilt from its Go module when the cache has none
def test_tilt_runs_with_the_pinned_tools_the_chart_and_no_usage_reports(tmp_path: Path) -> None:
    env = tilt_environment(tmp_path / "admin.kubeconfig", say=print, environ={"PATH": "/usr/bin"})
    assert env["KUBECONFIG"] == str(tmp_path / "admin.kubeconfig")
    assert env["PATH"].split(os.pathsep)[0] == str(tilt_binary().parent)
    assert env["PATH"].endswith(os.pathsep + "/usr/bin")
    assert Path(env[CHART_ENV]).exists()
    assert env["TILT_DISABLE_ANALYTICS"] == "1"
