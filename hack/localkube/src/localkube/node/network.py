"""The pod network: one bridge, its CNI configuration, and a guard that keeps it on this machine.

The bridge is made before the API server starts (the API server listens on its address) and
handed to the CNI bridge plugin by name. Pods get addresses from host-local IPAM, whose state is
kept in the cluster's folder. No masquerading: traffic forwarded between the bridge and any other
interface is dropped in the mangle table's FORWARD chain, ahead of everything kube-proxy adds to
the filter table, so no pod packet is routed off the machine.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from localkube.addresses import BRIDGE, NODE_ADDRESS, POD_CIDR, POD_PREFIX_LENGTH
from localkube.errors import LocalkubeError

CNI_NETWORK = "localkube"
CNI_VERSION = "1.0.0"
GUARD_TABLE = "mangle"
GUARD_CHAIN = "LOCALKUBE-GUARD"
GUARD_RULES = (
    ("-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP"),
    ("!", "-i", BRIDGE, "-o", BRIDGE, "-j", "DROP"),
)


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    """The network configuration list containerd's CRI plugin hands to the CNI plugins."""
    return {
        "cniVersion": CNI_VERSION,
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # Nothing leaves the machine, so nothing is masqueraded.
                "ipMasq": False,
                # A pod reaching itself through a Service address comes back the same port.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_ADDRESS}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def write_cni_config(conf_dir: Path, ipam_dir: Path) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / f"10-{CNI_NETWORK}.conflist"
    path.write_text(json.dumps(cni_config(ipam_dir), indent=2))
    return path


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{BRIDGE}").exists()


def create_bridge() -> None:
    """The bridge with the node's address, up (pods attach to it as they start)."""
    if bridge_exists():
        raise LocalkubeError(
            f"the network bridge {BRIDGE} exists already: another local node runs on this "
            "machine (stop it with `make local-cluster-down`), or one was not cleaned up"
        )
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("addr", "add", f"{NODE_ADDRESS}/{POD_PREFIX_LENGTH}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")


def delete_bridge() -> None:
    if bridge_exists():
        _ip("link", "delete", BRIDGE)


def install_guard() -> None:
    """Drop whatever would be forwarded between the bridge and another interface."""
    _iptables("-N", GUARD_CHAIN)
    for rule in GUARD_RULES:
        _iptables("-A", GUARD_CHAIN, *rule)
    _iptables("-I", "FORWARD", "1", "-j", GUARD_CHAIN)


def remove_guard() -> None:
    while _iptables("-D", "FORWARD", "-j", GUARD_CHAIN, check=False) == 0:
        pass
    _iptables("-F", GUARD_CHAIN, check=False)
    _iptables("-X", GUARD_CHAIN, check=False)


def _ip(*arguments: str) -> None:
    completed = subprocess.run(
        ["ip", *arguments], capture_output=True, text=True, timeout=30, check=False
    )
    if completed.returncode != 0:
        raise LocalkubeError(f"ip {' '.join(arguments)} failed: {completed.stderr.strip()}")


def _iptables(*arguments: str, check: bool = True) -> int:
    completed = subprocess.run(
        ["iptables", "-w", "10", "-t", GUARD_TABLE, *arguments],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check and completed.returncode != 0:
        raise LocalkubeError(
            f"iptables -t {GUARD_TABLE} {' '.join(arguments)} failed: {completed.stderr.strip()}"
        )
    return completed.returncode
