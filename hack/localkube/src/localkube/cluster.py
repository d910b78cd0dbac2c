"""Run etcd, kube-apiserver and kube-controller-manager on free loopback ports.

The cluster's folder holds its certificates, etcd's data, the logs, the admin kubeconfig and
``cluster.json`` (the pids), which is how `localkube down` in another shell finds what to stop.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from localkube.build import CONTROL_PLANE, Reporter, ensure_binaries, report_to_stderr
from localkube.components import api_server_command, controller_manager_command, etcd_command
from localkube.errors import ClusterStartError
from localkube.kubeconfig import write_client_certificate_kubeconfig
from localkube.pki import ControlPlanePKI, create_pki
from localkube.processes import RunningProcess, start_process, stop_processes
from localkube.readiness import client_tls, http_ok, unverified_tls, wait_until
from localkube.state import STATE_FILE, ClusterState

ETCD_DATA = "etcd"
PORT_ATTEMPTS = 3
PORT_TAKEN = "address already in use"


def start_cluster(
    directory: Path, *, die_with_parent: bool, report: Reporter = report_to_stderr
) -> ClusterState:
    """Build (or reuse) the binaries and start a control plane whose files live in ``directory``.

    On any failure everything already started is stopped again before the error is raised.
    """
    binaries = ensure_binaries(CONTROL_PLANE, report)
    directory.mkdir(parents=True, exist_ok=True)
    pki = create_pki(directory / "pki")
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start(directory, binaries, pki, die_with_parent=die_with_parent, report=report)
        except ClusterStartError as error:
            # A free port can be taken by someone else between our probe and the bind.
            if PORT_TAKEN not in str(error) or attempt == PORT_ATTEMPTS:
                raise
            report(f"a port was taken meanwhile; starting again ({error})")
            shutil.rmtree(directory / ETCD_DATA, ignore_errors=True)
    raise AssertionError("unreachable")


def _start(
    directory: Path,
    binaries: dict[str, Path],
    pki: ControlPlanePKI,
    *,
    die_with_parent: bool,
    report: Reporter,
) -> ClusterState:
    etcd_port, etcd_peer_port, api_port, controller_manager_port = _free_ports(4)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = write_client_certificate_kubeconfig(
        directory / "admin.kubeconfig",
        server=server,
        ca_pem=pki.ca.certificate.read_bytes(),
        certificate_pem=pki.admin.certificate.read_bytes(),
        key_pem=pki.admin.key.read_bytes(),
        user="localkube-admin",
    )
    controller_manager_kubeconfig = write_client_certificate_kubeconfig(
        directory / "controller-manager.kubeconfig",
        server=server,
        ca_pem=pki.ca.certificate.read_bytes(),
        certificate_pem=pki.controller_manager.certificate.read_bytes(),
        key_pem=pki.controller_manager.key.read_bytes(),
        user="system:kube-controller-manager",
    )
    state = ClusterState(directory, server, kubeconfig, ())
    report(f"starting a control plane in {directory} (API server {server})")
    started = time.monotonic()

    def launch(name: str, command: list[str]) -> RunningProcess:
        nonlocal state
        process = start_process(
            name, command, directory / "logs" / f"{name}.log", die_with_parent=die_with_parent
        )
        state = ClusterState(directory, server, kubeconfig, (*state.processes, process))
        state.save()  # before waiting, so a partial start can still be stopped from outside
        return process

    try:
        etcd = launch(
            "etcd",
            etcd_command(binaries["etcd"], directory / ETCD_DATA, etcd_port, etcd_peer_port),
        )
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{etcd_port}/health", None), etcd, "etcd /health"
        )
        api_server = launch(
            "kube-apiserver",
            api_server_command(binaries["kube-apiserver"], pki, etcd_port, api_port),
        )
        admin_tls = client_tls(pki)
        wait_until(lambda: http_ok(f"{server}/readyz", admin_tls), api_server, "/readyz")
        controller_manager = launch(
            "kube-controller-manager",
            controller_manager_command(
                binaries["kube-controller-manager"],
                pki,
                controller_manager_kubeconfig,
                directory / "controller-manager-certs",
                controller_manager_port,
            ),
        )
        wait_until(
            lambda: http_ok(
                f"https://127.0.0.1:{controller_manager_port}/healthz", unverified_tls()
            ),
            controller_manager,
            "kube-controller-manager /healthz",
        )
        # Pods (of Jobs, say) are admitted only once the namespace's default ServiceAccount
        # exists: the controller manager making it is the sign that its controllers run.
        wait_until(
            lambda: http_ok(
                f"{server}/api/v1/namespaces/default/serviceaccounts/default", admin_tls
            ),
            controller_manager,
            "the default ServiceAccount (made by the controller manager)",
        )
    except BaseException:
        stop_cluster(state)
        raise
    report(f"control plane ready in {time.monotonic() - started:.1f}s")
    return state


def stop_cluster(state: ClusterState, *, keep_data: bool = True) -> None:
    """Stop the processes (controller manager first, etcd last) and forget the pid file.

    Without ``keep_data`` etcd's data (tens of MB of preallocated WAL) goes too; the
    certificates and logs stay for a look after a failure.
    """
    stop_processes(tuple(reversed(state.processes)))
    (state.directory / STATE_FILE).unlink(missing_ok=True)
    if not keep_data:
        shutil.rmtree(state.directory / ETCD_DATA, ignore_errors=True)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()
