"""Starting and stopping leaves nothing behind: `localkube up`/`down` from separate processes,
and a cluster whose owner is killed outright."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localkube import cluster
from localkube.processes import pid_alive
from localkube.state import STATE_FILE
from localkube.waiting import wait_for

from .sessiontools import pytest_env, run_pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def localkube(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localkube", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_up_prints_a_working_kubeconfig_and_down_stops_every_process(
    tmp_path: Path, localkube_binaries: dict[str, Path]
) -> None:
    cluster_dir = tmp_path / "cluster"
    started = localkube("--dir", str(cluster_dir), "up", "--no-node")
    assert started.returncode == 0, started.stderr
    export = started.stdout.strip()
    assert export.startswith("export KUBECONFIG=")  # and nothing else: eval "$(localkube up)"
    assert f"kubectl: {localkube_binaries['kubectl']}" in started.stderr
    kubeconfig = export.removeprefix("export KUBECONFIG=")

    state = json.loads((cluster_dir / STATE_FILE).read_text())
    pids = [p["pid"] for p in state["processes"]]
    assert [p["name"] for p in state["processes"]] == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
    ]
    try:
        # The processes outlive the `up` command: they belong to nobody's test session.
        assert all(pid_alive(pid) for pid in pids)
        kubectl = localkube_binaries["kubectl"]
        namespaces = subprocess.run(
            [str(kubectl), "get", "ns", "-o", "name"],
            env={**os.environ, "KUBECONFIG": kubeconfig},
            capture_output=True,
            text=True,
            check=True,
        )
        assert "namespace/kube-system" in namespaces.stdout.split()

        again = localkube("--dir", str(cluster_dir), "up", "--no-node")
        assert again.returncode == 0
        assert "already running" in again.stderr
        assert again.stdout.strip() == export
    finally:
        stopped = localkube("--dir", str(cluster_dir), "down")
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not (cluster_dir / STATE_FILE).exists()
    assert not Path(kubeconfig).exists()  # it would point at a dead server
    assert localkube("--dir", str(cluster_dir), "status").returncode == 1


OWNER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from localkube.cluster import start_cluster
    state = start_cluster(Path(sys.argv[1]), die_with_parent=True, report=lambda _: None)
    print(json.dumps([p.pid for p in state.processes]), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.usefixtures("localkube_binaries")
def test_a_killed_owner_takes_its_control_plane_with_it(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "cluster")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, owner.stderr.read() if owner.stderr else "the owner printed nothing"
        pids: list[int] = json.loads(line)
        assert len(pids) == 3
        assert all(pid_alive(pid) for pid in pids)
    finally:
        owner.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel can help
        owner.wait()

    def all_gone() -> bool:
        return not [pid for pid in pids if pid_alive(pid)]

    wait_for(all_gone, timeout=15, what=f"the control plane's processes {pids} to exit")


EXISTING_CLUSTER_TEST = textwrap.dedent(
    """
    import os

    def test_uses_the_existing_cluster(kube, kube_namespace):
        assert kube.local  # `localkube up`'s: no pods run there either
        assert kube.server == os.environ["EXPECTED_SERVER"]
        assert str(kube.kubeconfig) == os.environ["KUBECONFIG"]
        assert kube.install_prometheus_operator_crds() == []  # `up` installed them already
        names = kube.kubectl("get", "ns", "-o", "name").stdout.split()
        assert f"namespace/{kube_namespace}" in names
    """
)


def test_the_fixture_takes_a_loopback_kubeconfig_as_it_is(
    tmp_path: Path, localkube_binaries: dict[str, Path]
) -> None:
    """KUBECONFIG alone at a cluster on this machine (here `localkube up`'s; kind's likewise)."""
    cluster_dir = tmp_path / "cluster"
    started = localkube("--dir", str(cluster_dir), "up", "--no-node")
    assert started.returncode == 0, started.stderr
    kubeconfig = started.stdout.strip().removeprefix("export KUBECONFIG=")
    server = json.loads((cluster_dir / STATE_FILE).read_text())["server"]
    (tmp_path / "test_existing.py").write_text(EXISTING_CLUSTER_TEST)
    try:
        run = run_pytest(
            tmp_path,
            pytest_env(KUBECONFIG=kubeconfig, EXPECTED_SERVER=server),
            "test_existing.py",
        )
    finally:
        localkube("--dir", str(cluster_dir), "down")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "starting a control plane" not in run.stderr


SESSION_TEST = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from localkube.waiting import wait_for

    OUT = Path(os.environ["SESSION_OUT"])


    def test_records_the_cluster(kube):
        assert kube.local
        (OUT / "cluster.json").write_text((kube.kubeconfig.parent / "cluster.json").read_text())


    def test_fails_in_its_namespace(kube_namespace):
        (OUT / "namespace").write_text(kube_namespace)
        assert False, "deliberately"


    def test_the_failed_test_namespace_is_deleted(kube):
        name = (OUT / "namespace").read_text()
        core = client.CoreV1Api(kube.api_client)

        def gone():
            try:
                core.read_namespace(name)
            except ApiException as error:
                return error.status == 404
            return False

        wait_for(gone, timeout=120, what=f"namespace {name} to be deleted")
    """
)


def test_a_session_leaves_no_process_behind_even_after_a_failing_test(
    tmp_path: Path, localkube_binaries: dict[str, Path]
) -> None:
    """A whole pytest session on the fixtures; its KUBECONFIG names a remote cluster, which
    without the opt-in is left alone: the session starts its own control plane."""
    remote = tmp_path / "remote.kubeconfig"
    remote.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "prod", "cluster": {"server": "https://10.255.255.1"}}],
                "users": [{"name": "prod", "user": {"token": "x"}}],
                "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
                "current-context": "prod",
            }
        )
    )
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "test_session.py").write_text(SESSION_TEST)
    run = run_pytest(
        tmp_path,
        pytest_env(KUBECONFIG=str(remote), SESSION_OUT=str(out)),
        "test_session.py",
        f"--basetemp={tmp_path / 'session-tmp'}",
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "1 failed, 2 passed" in run.stdout, output
    assert run.stderr.count("context 'prod' (server https://10.255.255.1)") == 1, output

    recorded = json.loads((out / "cluster.json").read_text())
    pids = {p["name"]: p["pid"] for p in recorded["processes"]}
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    wait_for(
        lambda: not any(pid_alive(pid) for pid in pids.values()),
        timeout=15,
        what=f"the session's control plane {pids} to be gone",
    )
    cluster_dir = Path(recorded["kubeconfig"]).parent
    assert not (cluster_dir / STATE_FILE).exists()
    assert not (cluster_dir / "etcd").exists()


INTERRUPTED_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from localkube.cluster import start_cluster, stop_cluster
    # No parent-death signal: only the orderly stop can clean up here.
    state = start_cluster(Path(sys.argv[1]), die_with_parent=False, report=lambda _: None)
    try:
        print(json.dumps([p.pid for p in state.processes]), flush=True)
        time.sleep(600)
    finally:
        stop_cluster(state)
    """
)


def test_ctrl_c_twice_still_stops_every_process(
    tmp_path: Path, localkube_binaries: dict[str, Path]
) -> None:
    cluster_dir = tmp_path / "cluster"
    owner = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_SCRIPT, str(cluster_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    try:
        pids: list[int] = json.loads(owner.stdout.readline() or "[]")
        assert len(pids) == 3
        etcd, _api_server, controller_manager = pids
        owner.send_signal(signal.SIGINT)
        # The controller manager stops first: once it is gone the stop is under way, and
        # an impatient second Ctrl-C lands in the middle of it.
        wait_for(lambda: not pid_alive(controller_manager), timeout=30, what="the stop to begin")
        assert pid_alive(etcd), "the stop was over before the second Ctrl-C could test it"
        owner.send_signal(signal.SIGINT)
        owner.wait(timeout=60)
        assert owner.returncode != 0  # the interrupt still ends the program
        assert not [pid for pid in pids if pid_alive(pid)]
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        localkube("--dir", str(cluster_dir), "down")  # whatever a failure left behind


def test_a_port_taken_between_probe_and_bind_means_another_try(
    tmp_path: Path, localkube_binaries: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = int(squatter.getsockname()[1])
    real_free_ports = cluster._free_ports
    probes: list[list[int]] = []

    def first_probe_collides(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not probes:
            ports[0] = taken  # etcd's client port: someone else got there first
        probes.append(ports)
        return ports

    monkeypatch.setattr(cluster, "_free_ports", first_probe_collides)
    messages: list[str] = []
    try:
        state = cluster.start_cluster(
            tmp_path / "cluster", die_with_parent=True, report=messages.append
        )
        cluster.stop_cluster(state)
    finally:
        squatter.close()
    assert len(probes) == 2
    assert any("a port was taken meanwhile" in m for m in messages)
    assert f"127.0.0.1:{taken}" not in state.server
