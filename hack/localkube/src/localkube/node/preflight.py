"""What a node needs from the host, checked before anything is changed on it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from localkube.errors import MissingToolError
from localkube.node.hoststate import cgroup_hierarchies

COMMANDS = ("containerd", "ctr", "runc", "ip", "iptables", "ip6tables", "conntrack", "umount")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
INSTALL_HINT = "install them with `sudo bash hack/install-system-deps.sh` (Debian packages)"


def check_host() -> str:
    """The CNI plugins' folder, once everything a node needs is there; else MissingToolError."""
    if os.geteuid() != 0:
        raise MissingToolError(
            "a local node needs root (it creates a bridge, iptables rules and cgroups); run as "
            "root, or start the control plane alone (`localkube up --no-node`)"
        )
    missing = [command for command in COMMANDS if shutil.which(command) is None]
    if missing:
        raise MissingToolError(f"a local node needs {', '.join(missing)}: {INSTALL_HINT}")
    cni_dir = next(
        (d for d in CNI_BIN_DIRS if all((Path(d) / p).is_file() for p in CNI_PLUGINS)), None
    )
    if cni_dir is None:
        raise MissingToolError(
            f"a local node needs the CNI plugins {', '.join(CNI_PLUGINS)} in one of "
            f"{', '.join(CNI_BIN_DIRS)} (package containernetworking-plugins): {INSTALL_HINT}"
        )
    if not cgroup_hierarchies():
        raise MissingToolError("a local node needs cgroups mounted under /sys/fs/cgroup")
    return cni_dir
