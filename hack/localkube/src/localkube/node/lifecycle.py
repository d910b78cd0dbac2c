"""Bringing a node up and down, as a list of small ordered steps.

Up, around the control plane (localkube.cluster): before it, the host's side (the host's state
saved, the bridge, the guard, the CNI configuration); after it, containerd, the images, the
kubelet, kube-proxy, the volume provisioner, then the add-ons (CoreDNS, the default
StorageClass), waiting for the node to be Ready and the cluster DNS to answer.
Down: the processes are stopped by the cluster, then ``tear_down`` sweeps the host.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from localkube.addresses import BRIDGE
from localkube.errors import ClusterStartError, LocalkubeError
from localkube.images import ImageArchive, coredns_image, pause_image
from localkube.kubeconfig import write_component_kubeconfig
from localkube.node import addons, containerd, kubelet, kubeproxy, network
from localkube.node.hoststate import HostState, read_host_state
from localkube.node.paths import DATA_DIR, RUNTIME_DIR
from localkube.node.preflight import check_host
from localkube.node.sweep import sweep
from localkube.pki import ControlPlanePKI
from localkube.processes import RunningProcess
from localkube.readiness import http_ok, wait_until

Reporter = Callable[[str], None]
Launcher = Callable[[str, list[str]], RunningProcess]
NODE_READY_TIMEOUT = 120.0
ADDONS_TIMEOUT = 180.0
RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc")
# The machine has room for one node (one bridge, one set of kube-proxy chains): this file names
# the folder of the cluster holding it, so a node whose owner died can be found and cleaned up.
# In /run, which a reboot empties along with everything the node had set up.
NODE_MARKER = RUNTIME_DIR / "node"


@dataclass(frozen=True)
class NodeLayout:
    """The node's files, all under one folder of the cluster's."""

    folder: Path

    @property
    def containerd(self) -> containerd.ContainerdLayout:
        return containerd.ContainerdLayout(self.folder / "containerd")

    @property
    def kubelet(self) -> kubelet.KubeletLayout:
        return kubelet.KubeletLayout(self.folder / "kubelet")

    @property
    def kube_proxy_config(self) -> Path:
        return self.folder / "kube-proxy.yaml"

    @property
    def volumes(self) -> Path:
        return DATA_DIR / "volumes"

    @property
    def host_before(self) -> Path:
        """The host as it was before the node started: what tear_down restores."""
        return self.folder / "host-before.json"


@dataclass(frozen=True)
class NodePorts:
    kubelet_healthz: int
    kube_proxy_metrics: int
    kube_proxy_healthz: int


def node_name() -> str:
    """The machine's hostname, as the kubelet registers by default."""
    return socket.gethostname().lower()


def node_holder() -> Path | None:
    """The folder of the cluster that holds the machine's node, if one does."""
    try:
        return Path(NODE_MARKER.read_text().strip())
    except FileNotFoundError:
        return None


def claim_node(cluster: Path) -> None:
    NODE_MARKER.parent.mkdir(parents=True, exist_ok=True)
    NODE_MARKER.write_text(f"{cluster}\n")


def release_node(cluster: Path) -> None:
    if node_holder() == cluster:
        NODE_MARKER.unlink(missing_ok=True)


def prepare_host(layout: NodeLayout, report: Reporter) -> str:
    """Check the host, remember its state, make the bridge, the guard and the CNI config.

    Returns the CNI plugins' folder. Runs before the API server, which listens on the bridge.
    """
    cni_bin_dir = check_host()
    layout.folder.mkdir(parents=True, exist_ok=True)
    if HostState.load(layout.host_before) is None:  # a retry keeps the first snapshot
        read_host_state().save(layout.host_before)
    claim_node(layout.folder.parent)
    report(f"node: bridge {BRIDGE} for the pods")
    network.create_bridge()
    network.install_guard()
    network.write_cni_config(layout.containerd.cni_conf_dir, layout.containerd.cni_ipam_dir)
    return cni_bin_dir


def node_images(report: Reporter) -> list[ImageArchive]:
    """What every node runs: the pod sandbox and the cluster DNS."""
    return [pause_image(report), coredns_image(report)]


def start_node(
    layout: NodeLayout,
    *,
    pki: ControlPlanePKI,
    server: str,
    binaries: dict[str, Path],
    cni_bin_dir: str,
    ports: NodePorts,
    images: Sequence[ImageArchive],
    launch: Launcher,
    admin_tls: ssl.SSLContext,
    report: Reporter,
) -> None:
    """containerd, the kubelet, kube-proxy and the provisioner, each waited for in turn, then
    the node's Ready condition."""
    name = node_name()
    system_images = node_images(report)
    runtime = layout.containerd
    if containerd.store_too_large(runtime):
        report(f"node: the image store {runtime.root} outgrew its limit: starting it afresh")
        shutil.rmtree(runtime.root, ignore_errors=True)
    containerd.write_config(
        runtime,
        sandbox_image=system_images[0].reference,
        runc=_runc(),
        cni_bin_dir=cni_bin_dir,
    )
    runtime_process = launch(
        "containerd", containerd.containerd_command(Path(_which("containerd")), runtime)
    )
    wait_until(lambda: containerd.ready(runtime), runtime_process, "containerd's socket")
    leftovers = containerd.remove_containers(runtime)
    if leftovers:
        report(f"node: removed {leftovers} containers an earlier node left")
    started = time.monotonic()
    imported = containerd.import_images(runtime, [*system_images, *images])
    report(f"node: imported {len(imported)} images in {time.monotonic() - started:.0f}s")

    kubelet_kubeconfig = write_component_kubeconfig(
        layout.folder / "kubelet.kubeconfig",
        server=server,
        ca=pki.ca,
        identity=pki.kubelet,
        user=f"system:node:{name}",
    )
    kubelet.create_cgroup_root()
    kubelet.write_config(
        layout.kubelet,
        ca_file=pki.ca.certificate,
        runtime_socket=runtime.socket,
        healthz_port=ports.kubelet_healthz,
    )
    kubelet_process = launch(
        "kubelet",
        kubelet.kubelet_command(binaries["kubelet"], layout.kubelet, kubelet_kubeconfig),
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{ports.kubelet_healthz}/healthz", None),
        kubelet_process,
        "the kubelet's /healthz",
    )

    proxy_kubeconfig = write_component_kubeconfig(
        layout.folder / "kube-proxy.kubeconfig",
        server=server,
        ca=pki.ca,
        identity=pki.kube_proxy,
        user="system:kube-proxy",
    )
    kubeproxy.write_config(
        layout.kube_proxy_config,
        proxy_kubeconfig,
        metrics_port=ports.kube_proxy_metrics,
        healthz_port=ports.kube_proxy_healthz,
    )
    proxy_process = launch(
        "kube-proxy",
        kubeproxy.kube_proxy_command(binaries["kube-proxy"], layout.kube_proxy_config, name),
    )
    wait_until(
        lambda: http_ok(f"http://127.0.0.1:{ports.kube_proxy_healthz}/livez", None),
        proxy_process,
        "kube-proxy's /livez",
    )
    launch(
        "provisioner",
        [
            sys.executable,
            "-m",
            "localkube.node.provisioner",
            f"--kubeconfig={layout.folder.parent / 'admin.kubeconfig'}",
            f"--root={layout.volumes}",
        ],
    )
    url = f"{server}/api/v1/nodes/{name}"
    wait_until(lambda: _node_ready(url, admin_tls), kubelet_process, f"node {name} Ready")


def _node_ready(url: str, tls: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=tls) as response:  # noqa: S310
            node = json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def install_addons(kubectl: Path, kubeconfig: Path, coredns: ImageArchive) -> None:
    """CoreDNS and the default StorageClass, applied and waited for."""
    objects = [*addons.coredns_objects(coredns.reference), addons.storage_class()]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    _kubectl(kubectl, kubeconfig, "apply", "--server-side", "-f", "-", stdin=document)
    _kubectl(
        kubectl,
        kubeconfig,
        "rollout",
        "status",
        f"deployment/{addons.COREDNS}",
        f"--namespace={addons.NAMESPACE}",
        f"--timeout={ADDONS_TIMEOUT:.0f}s",
    )


def tear_down(layout: NodeLayout, kube_proxy: Path | None, report: Reporter) -> None:
    """After the node's processes are stopped: put the host back as it was, free the disk."""
    sweep(HostState.load(layout.host_before), kube_proxy=kube_proxy, report=report)
    layout.host_before.unlink(missing_ok=True)


def _kubectl(kubectl: Path, kubeconfig: Path, *arguments: str, stdin: str | None = None) -> None:
    completed = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=ADDONS_TIMEOUT + 30,
        check=False,
    )
    if completed.returncode != 0:
        raise ClusterStartError(f"kubectl {' '.join(arguments)} failed: {completed.stderr.strip()}")


def _which(command: str) -> str:
    found = shutil.which(command)
    if found is None:
        raise LocalkubeError(f"{command} not found")
    return found


def _runc() -> str:
    return next((p for p in RUNC_CANDIDATES if Path(p).is_file()), _which("runc"))
