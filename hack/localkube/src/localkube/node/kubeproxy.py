"""kube-proxy (iptables mode): its configuration and command line, and its own clean-up.

Told to leave the host's conntrack and localhost settings alone, so that what it changes is
only its own KUBE-* chains, which `kube-proxy --cleanup` removes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from localkube.addresses import NODE_ADDRESS, POD_CIDR


def kube_proxy_config(kubeconfig: Path, *, metrics_port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "bindAddress": NODE_ADDRESS,
        "clusterCIDR": POD_CIDR,
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        # NodePorts on 127.0.0.1 need route_localnet=1 on every interface: not wanted here.
        "iptables": {"localhostNodePorts": False},
        # 0: leave the host's conntrack table size and timeouts as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def write_config(path: Path, kubeconfig: Path, **ports: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(kube_proxy_config(kubeconfig, **ports), sort_keys=False))
    return path


def kube_proxy_command(binary: Path, config: Path, node_name: str) -> list[str]:
    return [str(binary), f"--config={config}", f"--hostname-override={node_name}", "--v=1"]


def cleanup_command(binary: Path) -> list[str]:
    """Removes every chain and rule kube-proxy made (iptables, ip6tables, and other modes')."""
    return [str(binary), "--cleanup", "--v=0"]
