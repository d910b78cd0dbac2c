"""Run etcd, kube-apiserver and kube-controller-manager on free ports, and a node beside them.

Without a node, the control plane listens on loopback only. With one (``node=True``), the
scheduler runs too and the API server listens on the node's bridge address, where the pods
reach it; localkube.node brings up containerd, the kubelet, kube-proxy, the provisioner and the
add-ons around it, and puts the host back when it stops.

The cluster's folder holds its certificates, etcd's data, the logs, the admin kubeconfig and
``cluster.json`` (the pids), which is how `localkube down` in another shell finds what to stop.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from localkube.addresses import NODE_ADDRESS
from localkube.build import CONTROL_PLANE, NODE, Reporter, ensure_binaries, report_to_stderr
from localkube.components import (
    api_server_command,
    controller_manager_command,
    etcd_command,
    scheduler_command,
)
from localkube.errors import ClusterStartError, LocalkubeError
from localkube.images import ImageArchive
from localkube.kubeconfig import write_component_kubeconfig
from localkube.node import containerd, lifecycle
from localkube.pki import ControlPlanePKI, create_pki
from localkube.processes import RunningProcess, is_running, start_process, stop_processes
from localkube.readiness import client_tls, http_ok, unverified_tls, wait_until
from localkube.state import STATE_FILE, ClusterState

ETCD_DATA = "etcd"
PORT_ATTEMPTS = 3
PORT_TAKEN = "address already in use"


def start_cluster(
    directory: Path,
    *,
    die_with_parent: bool,
    report: Reporter = report_to_stderr,
    node: bool = False,
    images: Sequence[ImageArchive] = (),
) -> ClusterState:
    """Build (or reuse) the binaries and start a cluster whose files live in ``directory``.

    ``node``: a node as well, whose containerd gets ``images`` (beside its own pause and
    CoreDNS images). On any failure everything already started is stopped again (and the host
    put back) before the error is raised.
    """
    binaries = ensure_binaries((*CONTROL_PLANE, *NODE) if node else CONTROL_PLANE, report)
    directory.mkdir(parents=True, exist_ok=True)
    if node:
        clean_up_abandoned_node(directory, report)
    pki = create_pki(directory / "pki", lifecycle.node_name())
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start(
                directory,
                binaries,
                pki,
                die_with_parent=die_with_parent,
                report=report,
                node=node,
                images=images,
            )
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
    node: bool,
    images: Sequence[ImageArchive],
) -> ClusterState:
    etcd_port, etcd_peer_port, api_port, controller_manager_port, scheduler_port = _free_ports(5)
    address = NODE_ADDRESS if node else "127.0.0.1"
    server = f"https://{address}:{api_port}"
    kubeconfig = write_component_kubeconfig(
        directory / "admin.kubeconfig",
        server=server,
        ca=pki.ca,
        identity=pki.admin,
        user="localkube-admin",
    )
    controller_manager_kubeconfig = write_component_kubeconfig(
        directory / "controller-manager.kubeconfig",
        server=server,
        ca=pki.ca,
        identity=pki.controller_manager,
        user="system:kube-controller-manager",
    )
    state = ClusterState(directory, server, kubeconfig, (), node=node)
    state.save()  # a node changes the host before any process runs: `down` must find it
    what = "a control plane and a node" if node else "a control plane"
    report(f"starting {what} in {directory} (API server {server})")
    started = time.monotonic()

    def launch(name: str, command: list[str]) -> RunningProcess:
        nonlocal state
        process = start_process(
            name, command, directory / "logs" / f"{name}.log", die_with_parent=die_with_parent
        )
        state = ClusterState(directory, server, kubeconfig, (*state.processes, process), node=node)
        state.save()  # before waiting, so a partial start can still be stopped from outside
        return process

    try:
        layout = lifecycle.NodeLayout(directory / "node")
        cni_bin_dir = ""
        if node:
            cni_bin_dir = lifecycle.prepare_host(layout, report)
        etcd = launch(
            "etcd",
            etcd_command(binaries["etcd"], directory / ETCD_DATA, etcd_port, etcd_peer_port),
        )
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{etcd_port}/health", None), etcd, "etcd /health"
        )
        api_server = launch(
            "kube-apiserver",
            api_server_command(
                binaries["kube-apiserver"], pki, etcd_port, api_port, address=address
            ),
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
        report(f"control plane ready in {time.monotonic() - started:.1f}s")
        if node:
            scheduler_kubeconfig = write_component_kubeconfig(
                directory / "scheduler.kubeconfig",
                server=server,
                ca=pki.ca,
                identity=pki.scheduler,
                user="system:kube-scheduler",
            )
            scheduler = launch(
                "kube-scheduler",
                scheduler_command(binaries["kube-scheduler"], scheduler_kubeconfig, scheduler_port),
            )
            wait_until(
                lambda: http_ok(f"https://127.0.0.1:{scheduler_port}/healthz", unverified_tls()),
                scheduler,
                "kube-scheduler /healthz",
            )
            healthz, metrics, proxy_healthz = _free_ports(3)
            lifecycle.start_node(
                layout,
                pki=pki,
                server=server,
                binaries=binaries,
                cni_bin_dir=cni_bin_dir,
                ports=lifecycle.NodePorts(healthz, metrics, proxy_healthz),
                images=images,
                launch=launch,
                admin_tls=admin_tls,
                report=report,
            )
            lifecycle.install_addons(
                binaries["kubectl"], kubeconfig, lifecycle.node_images(report)[1]
            )
            report(f"node {lifecycle.node_name()} ready in {time.monotonic() - started:.1f}s")
    except BaseException:
        stop_cluster(state)
        raise
    return state


def _stop_node_processes(state: ClusterState, report: Reporter) -> None:
    """The kubelet and what depends on it first, then the containers through containerd
    while it still runs (the image store keeps images only), then containerd."""
    by_name = {p.name: p for p in state.processes}
    first = [by_name[n] for n in ("provisioner", "kube-proxy", "kubelet") if n in by_name]
    stop_processes(first)
    runtime = by_name.get("containerd")
    layout = lifecycle.NodeLayout(state.directory / "node").containerd
    if runtime is not None and is_running(runtime):
        try:
            containerd.remove_containers(layout)
        except (LocalkubeError, subprocess.TimeoutExpired) as error:
            report(f"could not remove the node's containers through containerd: {error}")
        stop_processes([runtime])


def clean_up_abandoned_node(directory: Path | None, report: Reporter = report_to_stderr) -> None:
    """The machine's node, if a cluster that is no longer running left it set up (a cluster
    starting in ``directory`` takes its own node over instead)."""
    holder = lifecycle.node_holder()
    if holder is None or holder == directory:
        return
    stale = ClusterState.load(holder)
    if stale is not None and stale.running():
        raise ClusterStartError(
            f"the machine's local node belongs to the cluster in {holder}, which is running: "
            f"stop it first (`localkube --dir {holder} down`; `make local-cluster-down` stops "
            "the default one), or start this cluster without a node"
        )
    report(f"cleaning up the node of a cluster that stopped without removing it ({holder})")
    stop_cluster(
        stale or ClusterState(holder, "", holder / "admin.kubeconfig", (), node=True),
        keep_data=False,
        report=report,
    )


def stop_cluster(
    state: ClusterState, *, keep_data: bool = True, report: Reporter = report_to_stderr
) -> None:
    """Stop the processes (the node's first, etcd last), put the host back, forget the pids.

    Without ``keep_data`` etcd's data (tens of MB of preallocated WAL) goes too; the
    certificates and logs stay for a look after a failure. A node's containers, images and
    volumes always go (they are gigabytes, and nothing could restart them).
    """
    if state.node:
        _stop_node_processes(state, report)
    stop_processes(tuple(reversed(state.processes)))
    if state.node:
        kube_proxy = next((p for p in state.processes if p.name == "kube-proxy"), None)
        lifecycle.tear_down(
            lifecycle.NodeLayout(state.directory / "node"),
            Path(kube_proxy.executable) if kube_proxy else None,
            report,
        )
        lifecycle.release_node(state.directory)
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
