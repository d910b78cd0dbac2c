"""Removing everything a node put on the host, whatever state it was left in.

Runs after the node's processes are stopped (or found dead): containers killed through their
cgroups, containerd's shims stopped, every mount under the node's folder unmounted (overlay root
filesystems, pod volumes, network namespaces), the pods' cgroups removed, kube-proxy's chains
cleaned, the guard chain and the bridge deleted, sysctls put back and the paths the kubelet and
containerd create whatever they are told removed, all judged against the host as it was
before the node started (``HostState`` saved in the node's folder).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from localkube.node import network
from localkube.node.hoststate import (
    FIXED_PATHS,
    HostState,
    cgroup_hierarchies,
    mount_points,
    our_chains,
    write_sysctl,
)
from localkube.node.kubelet import CGROUP_ROOT
from localkube.node.paths import DATA_DIR, RUNTIME_DIR

Reporter = Callable[[str], None]
KILL_WAIT_SECONDS = 10.0
# Steps slower than this are reported, so a slow clean-up says where its time goes.
SLOW_STEP_SECONDS = 3.0


def sweep(
    before: HostState | None,
    *,
    kube_proxy: Path | None,
    report: Reporter,
) -> None:
    """Undo the node; each step runs even when an earlier one failed."""
    steps: list[tuple[str, Callable[[], None]]] = [
        ("kill the pods' processes", _kill_cgroup_processes),
        ("stop containerd's shims", _kill_shims),
        ("unmount the node's mounts", lambda: _unmount_under(DATA_DIR)),
        ("remove the pods' cgroups", _remove_cgroups),
        ("remove kube-proxy's rules", lambda: _kube_proxy_cleanup(kube_proxy)),
        ("remove the guard chain", network.remove_guard),
        ("delete the bridge", network.delete_bridge),
        ("remove the node's data", lambda: remove_tree(DATA_DIR)),
        ("remove the node's runtime folder", lambda: remove_tree(RUNTIME_DIR)),
    ]
    if before is not None:
        steps += [
            ("remove chains added since the start", lambda: _remove_new_chains(before)),
            ("restore sysctls", lambda: _restore_sysctls(before)),
            ("remove paths created outside the node's folder", lambda: _remove_new_paths(before)),
        ]
    failures = []
    for what, step in steps:
        started = time.monotonic()
        try:
            step()
        except Exception as error:  # every step gets its chance; all failures are reported
            failures.append(f"{what}: {error}")
        took = time.monotonic() - started
        if took > SLOW_STEP_SECONDS:
            report(f"clean-up: {what} took {took:.0f}s")
    for failure in failures:
        report(f"clean-up incomplete: {failure}")


def _cgroup_dirs() -> list[Path]:
    """Every cgroup under the node's cgroup root, deepest first, in every hierarchy."""
    found: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / CGROUP_ROOT.lstrip("/")
        if top.is_dir():
            found += [Path(root) for root, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for directory in _cgroup_dirs():
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (directory / "cgroup.procs").read_text().split()}
    return pids


def _kill_cgroup_processes() -> None:
    """SIGKILL every process in the pods' cgroups (their containers), until none is left."""
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while (pids := _cgroup_pids()) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    if pids:
        raise RuntimeError(f"processes still in the pods' cgroups: {sorted(pids)}")


def _kill_shims() -> None:
    """containerd's runc shims outlive containerd; ours name the node's socket."""
    socket = str(RUNTIME_DIR)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ours = any(socket.encode() in argument for argument in command)
        if command[0].endswith(b"containerd-shim-runc-v2") and ours:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _unmount_under(folder: Path) -> None:
    """Unmount everything mounted below ``folder``, deepest first (lazily if busy)."""
    prefix = str(folder.resolve()) + "/"
    for _ in range(5):  # a mount may hide others beneath it; look again until none is left
        points = sorted(
            (p for p in mount_points() if p.startswith(prefix)),
            key=lambda p: p.count("/"),
            reverse=True,
        )
        if not points:
            return
        for point in points:
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = [p for p in mount_points() if p.startswith(prefix)]
    if left:
        raise RuntimeError(f"still mounted: {left}")


def _remove_cgroups() -> None:
    left = []
    for directory in _cgroup_dirs():
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            left.append(str(directory))
    if left:
        raise RuntimeError(f"cgroups still in use: {left[:5]}")


def _kube_proxy_cleanup(kube_proxy: Path | None) -> None:
    if kube_proxy is not None and kube_proxy.is_file():
        subprocess.run(
            [str(kube_proxy), "--cleanup", "--v=0"], capture_output=True, timeout=60, check=False
        )


def _remove_new_chains(before: HostState) -> None:
    """Chains the kubelet and kube-proxy made that --cleanup left (flush all, then delete)."""
    for command in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            known = set(before.chains.get(f"{command} {table}", []))
            new = our_chains(command, table) - known
            if not new:
                continue
            _delete_jumps(command, table, new)
            for chain in sorted(new):
                _xtables(command, table, "-F", chain)
            for chain in sorted(new):
                _xtables(command, table, "-X", chain)


def _delete_jumps(command: str, table: str, chains: set[str]) -> None:
    """Rules (in any chain) that jump to one of ``chains``, deleted by their own spec."""
    listed = subprocess.run(
        [command, "-w", "5", "-t", table, "-S"], capture_output=True, text=True, check=False
    ).stdout
    for line in listed.splitlines():
        parts = line.split()
        if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in chains:
            _xtables(command, table, "-D", *parts[1:])


def _xtables(command: str, table: str, *arguments: str) -> None:
    subprocess.run(
        [command, "-w", "5", "-t", table, *arguments], capture_output=True, timeout=30, check=False
    )


def _restore_sysctls(before: HostState) -> None:
    for name, value in before.sysctls.items():
        with contextlib.suppress(OSError):
            write_sysctl(name, value)


def _remove_new_paths(before: HostState) -> None:
    for path in FIXED_PATHS:
        if path not in before.paths and os.path.lexists(path):
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
            else:
                shutil.rmtree(path, ignore_errors=True)


def remove_tree(folder: Path) -> None:
    """rm -r, but never through a mount point that is still there (it would empty its source)."""
    if not folder.exists():
        return
    prefix = str(folder.resolve())
    mounted = [p for p in mount_points() if p == prefix or p.startswith(prefix + "/")]
    if mounted:
        raise RuntimeError(f"not removing {folder}: still mounted below it: {mounted[:3]}")
    shutil.rmtree(folder)
