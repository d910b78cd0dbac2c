"""The kubelet's configuration (a KubeletConfiguration document) and command line.

These machines are VMs with hybrid cgroup v1, no systemd and no CAP_SYS_RESOURCE: the cgroupfs
driver, `failCgroupV1: false` and no swap check; "Failed to set rlimit" in its log is harmless.
Its configuration and the pods' logs are in the cluster's folder, its root (volumes, sockets) in
the node's data folder; the few paths it hard-codes (localkube.node.hoststate.FIXED_PATHS) are
removed by the sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localkube.addresses import CLUSTER_DNS_IP, CLUSTER_DOMAIN, NODE_ADDRESS
from localkube.node.hoststate import NODE_CGROUP, cgroup_hierarchies
from localkube.node.paths import DATA_DIR

# Every pod's cgroup lives under this one, in each hierarchy: one subtree to remove at the end.
CGROUP_ROOT = f"/{NODE_CGROUP}"
KUBELET_PORT = 10250


@dataclass(frozen=True)
class KubeletLayout:
    folder: Path
    root: Path = DATA_DIR / "kubelet"

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.folder / "pod-logs"

    @property
    def resolv_conf(self) -> Path:
        return self.folder / "resolv.conf"


def kubelet_config(
    layout: KubeletLayout, *, ca_file: Path, runtime_socket: Path, healthz_port: int
) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        # The API server authenticates with a client certificate of the cluster's CA and is
        # authorised by a SubjectAccessReview, as on any kubeadm node.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [CLUSTER_DNS_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        # The host's resolver is not the pods' business: nothing is looked up off the machine.
        "resolvConf": str(layout.resolv_conf),
        "podLogsDir": str(layout.pod_logs),
        # A test machine's disk is often fuller than a node's: evict only when it is really full,
        # and never collect the images imported from archives (nothing could pull them back).
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        # Secrets and ConfigMaps reach pods within seconds (rule files, dashboards, Corefile).
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "registerNode": True,
    }


def create_cgroup_root() -> None:
    """The pods' parent cgroup in every hierarchy: the kubelet wants it to exist.

    A new cpuset cgroup starts with no CPUs and no memory nodes (cgroup v1), and nothing can
    join it until it has some: it gets its parent's.
    """
    for hierarchy in cgroup_hierarchies():
        folder = hierarchy / CGROUP_ROOT.lstrip("/")
        folder.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            inherited = hierarchy / name
            if inherited.is_file() and not (folder / name).read_text().strip():
                (folder / name).write_text(inherited.read_text())


def write_config(layout: KubeletLayout, **settings: Any) -> Path:
    layout.folder.mkdir(parents=True, exist_ok=True)
    layout.pod_logs.mkdir(parents=True, exist_ok=True)
    layout.resolv_conf.write_text("")
    layout.config.write_text(yaml.safe_dump(kubelet_config(layout, **settings), sort_keys=False))
    return layout.config


def kubelet_command(binary: Path, layout: KubeletLayout, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--config={layout.config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={layout.root}",
        f"--cert-dir={layout.root / 'pki'}",
        f"--node-ip={NODE_ADDRESS}",
        "--v=1",
    ]
