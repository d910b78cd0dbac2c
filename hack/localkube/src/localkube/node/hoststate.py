"""What a node changes on the host, read so that it can be restored and checked.

Snapshot the host before the node starts (kept in the cluster's folder, so `localkube down` in
another shell can restore it), and compare afterwards: sysctls the kubelet, kube-proxy and the
CNI bridge plugin set, iptables chains, network links and namespaces, mounts, cgroups, and the
few paths the kubelet and containerd create outside the cluster's folder whatever they are told.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localkube.addresses import BRIDGE

# Set by the kubelet (its kernel tunables), kube-proxy and the bridge plugin (forwarding).
TRACKED_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
# The chains the kubelet and kube-proxy make (KUBE-) and our guard's. Only these are tracked
# (and ever removed): podman's CNI-* chains, say, are not a node's business.
OUR_CHAIN_PREFIXES = ("KUBE-", "LOCALKUBE-")
# Paths the kubelet and containerd create whatever their configuration says.
FIXED_PATHS = (
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/var/lib/containerd",
    "/opt/containerd",
    "/var/run/netns",
    "/etc/cni/net.d",
    "/var/lib/cni",
    "/run/localkube",  # localkube.node.paths: removed with the node
    "/var/lib/localkube",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Where a node's mounts are (its pods' root filesystems, volumes, network namespaces), and the
# cgroup its pods live under (localkube.node.kubelet.CGROUP_ROOT).
NODE_MOUNT_PREFIXES = ("/var/lib/localkube/", "/run/localkube/", "/var/lib/kubelet/")
NODE_CGROUP = "localkube"
SYSCTL_ROOT = Path("/proc/sys")


@dataclass(frozen=True)
class HostState:
    """The parts of the host a node touches, in plain JSON-able form."""

    sysctls: dict[str, str] = field(default_factory=dict)
    # "<command> <table>" -> our chains in it (iptables and ip6tables; OUR_CHAIN_PREFIXES).
    chains: dict[str, list[str]] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    # "<hierarchy>/<top-level cgroup>" for every cgroup directly under a hierarchy's root.
    cgroups: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> HostState | None:
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))


def read_host_state() -> HostState:
    return HostState(
        sysctls={name: value for name in TRACKED_SYSCTLS if (value := read_sysctl(name))},
        chains={
            f"{command} {table}": sorted(our_chains(command, table))
            for command in ("iptables", "ip6tables")
            for table in IPTABLES_TABLES
        },
        links=sorted(_links()),
        netns=sorted(_netns()),
        mounts=sorted(mount_points()),
        cgroups=sorted(_top_level_cgroups()),
        paths=sorted(p for p in FIXED_PATHS if os.path.lexists(p)),
    )


def differences(before: HostState, after: HostState) -> list[str]:
    """What ``after`` has that ``before`` had not (and sysctls whose value moved), in words:
    of the host's links, network namespaces, mounts and cgroups, those a node makes (so that
    another program's container starting meanwhile, podman's or buildah's, is not counted)."""
    found = [
        f"sysctl {name}: {before.sysctls.get(name)} -> {value}"
        for name, value in after.sysctls.items()
        if before.sysctls.get(name) != value
    ]
    for table, chains in after.chains.items():
        found += [f"{table} chain {c}" for c in _new(before.chains.get(table, []), chains)]
    found += [f"link {name}" for name in _new(before.links, after.links) if name == BRIDGE]
    found += [f"network namespace {name}" for name in _new(before.netns, after.netns)]
    found += [
        f"mount {point}"
        for point in _new(before.mounts, after.mounts)
        if point.startswith(NODE_MOUNT_PREFIXES)
    ]
    found += [
        f"cgroup {name}"
        for name in _new(before.cgroups, after.cgroups)
        if name.endswith(f"/{NODE_CGROUP}")
    ]
    found += [f"path {path}" for path in _new(before.paths, after.paths)]
    return found


def _new(before: Iterable[str], after: Iterable[str]) -> list[str]:
    return sorted(set(after) - set(before))


def read_sysctl(name: str) -> str | None:
    try:
        return (SYSCTL_ROOT / name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    (SYSCTL_ROOT / name).write_text(f"{value}\n")


def iptables_chains(command: str, table: str) -> set[str]:
    """Chain names of one table (`iptables -S` lists `-N <chain>` and `-P <builtin> ...`)."""
    try:
        listed = subprocess.run(
            [command, "-w", "5", "-t", table, "-S"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return set()
    if listed.returncode != 0:
        return set()
    return {line.split()[1] for line in listed.stdout.splitlines() if line.startswith("-N ")}


def our_chains(command: str, table: str) -> set[str]:
    return {c for c in iptables_chains(command, table) if c.startswith(OUR_CHAIN_PREFIXES)}


def _links() -> set[str]:
    return {entry.name for entry in Path("/sys/class/net").iterdir()}


def _netns() -> set[str]:
    folder = Path("/var/run/netns")
    return {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()


def mount_points() -> set[str]:
    """Every mount point of this mount namespace (mountinfo's fifth field, unescaped)."""
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.add(_unescape(line.split()[4]))
    return points


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers and the unified one)."""
    if not CGROUP_ROOT.is_dir():
        return []
    if (CGROUP_ROOT / "cgroup.controllers").is_file():  # a pure cgroup v2 host
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink())


def _top_level_cgroups() -> set[str]:
    return {
        f"{hierarchy.name}/{child.name}"
        for hierarchy in cgroup_hierarchies()
        for child in hierarchy.iterdir()
        if child.is_dir()
    }
