"""containerd for the node: its configuration (as data), its command, and image imports.

Its configuration lives in the cluster's folder; its state and socket in the node's data and
runtime folders, its root (the images) in the cache (localkube.node.paths), never in
/var/lib/containerd or /run/containerd.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from localkube.errors import LocalkubeError, MissingToolError
from localkube.images import ImageArchive
from localkube.node.paths import DATA_DIR, RUNTIME_DIR, image_store

# The namespace the CRI plugin keeps Kubernetes' images and containers in.
CRI_NAMESPACE = "k8s.io"
IMPORT_TIMEOUT_SECONDS = 600.0
# The image store's compressed layers past this size: it is dropped and refilled from the
# archives (about 3 GiB hold every image the tests and the demo run).
MAX_STORE_BYTES = 20 * 1024**3


@dataclass(frozen=True)
class ContainerdLayout:
    """containerd's files: configuration in ``folder`` (the cluster's), state in DATA_DIR,
    images in the cache."""

    folder: Path
    data: Path = DATA_DIR / "containerd"

    @property
    def config(self) -> Path:
        return self.folder / "config.toml"

    @property
    def root(self) -> Path:
        return image_store()

    @property
    def state(self) -> Path:
        return self.data / "state"

    @property
    def socket(self) -> Path:
        return RUNTIME_DIR / "containerd.sock"

    @property
    def opt(self) -> Path:
        return self.data / "opt"

    @property
    def cni_conf_dir(self) -> Path:
        return self.folder / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.data / "cni-ipam"


def containerd_config(
    layout: ContainerdLayout, *, sandbox_image: str, runc: str, cni_bin_dir: str
) -> dict[str, Any]:
    cri = "io.containerd.grpc.v1.cri"
    return {
        "version": 2,
        "root": str(layout.root),
        "state": str(layout.state),
        "grpc": {"address": str(layout.socket)},
        "plugins": {
            # Where containerd would install "opt" plugins: /opt/containerd by default.
            "io.containerd.internal.v1.opt": {"path": str(layout.opt)},
            cri: {
                "sandbox_image": sandbox_image,
                # Without CAP_SYS_RESOURCE (these VMs) runc cannot lower a container's
                # oom_score_adj below its parent's; every sandbox fails without this.
                "restrict_oom_score_adj": True,
                # Pod network namespaces in the state folder, not /var/run/netns.
                "netns_mounts_under_state_dir": True,
                "containerd": {
                    "snapshotter": "overlayfs",
                    "default_runtime_name": "runc",
                    "runtimes": {
                        "runc": {
                            "runtime_type": "io.containerd.runc.v2",
                            # The kubelet's cgroupfs driver (no systemd on these machines).
                            "options": {"BinaryName": runc, "SystemdCgroup": False},
                        }
                    },
                },
                "cni": {"bin_dir": cni_bin_dir, "conf_dir": str(layout.cni_conf_dir)},
            },
        },
    }


def write_config(layout: ContainerdLayout, **settings: str) -> Path:
    layout.folder.mkdir(parents=True, exist_ok=True)
    layout.socket.parent.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(tomli_w.dumps(containerd_config(layout, **settings)))
    return layout.config


def containerd_command(binary: Path, layout: ContainerdLayout) -> list[str]:
    return [str(binary), f"--config={layout.config}", "--log-level=warn"]


def ctr_binary() -> str:
    found = shutil.which("ctr")
    if found is None:
        raise MissingToolError("ctr (from the containerd package) is needed to import images")
    return found


def ctr(layout: ContainerdLayout, *arguments: str, timeout: float = 60) -> str:
    completed = subprocess.run(
        [ctr_binary(), f"--address={layout.socket}", f"--namespace={CRI_NAMESPACE}", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise LocalkubeError(f"ctr {' '.join(arguments)} failed: {completed.stderr.strip()}")
    return completed.stdout


def ready(layout: ContainerdLayout) -> bool:
    if not layout.socket.exists():
        return False
    try:
        ctr(layout, "version", timeout=10)
    except (LocalkubeError, subprocess.TimeoutExpired):
        return False
    return True


def image_references(layout: ContainerdLayout) -> set[str]:
    return set(ctr(layout, "images", "list", "--quiet").split())


def remove_containers(layout: ContainerdLayout) -> int:
    """Kill every task and delete every container (their writable layers go with them), so
    the image store keeps images only; how many containers. On a node being stopped, once its
    kubelet is; on a new node, what an earlier one left when it was killed."""
    for task in ctr(layout, "tasks", "list", "--quiet").split():
        with contextlib.suppress(LocalkubeError):
            ctr(layout, "tasks", "kill", "--signal", "SIGKILL", task)
        with contextlib.suppress(LocalkubeError):
            ctr(layout, "tasks", "delete", "--force", task, timeout=60)
    listed = ctr(layout, "containers", "list", "--quiet").split()
    for chunk in range(0, len(listed), 50):
        ctr(layout, "containers", "delete", *listed[chunk : chunk + 50], timeout=300)
    return len(listed)


def store_too_large(layout: ContainerdLayout) -> bool:
    """Whether the image store's layers add up to more than MAX_STORE_BYTES: each rebuild of
    the product's images adds new ones, and nothing else removes the old."""
    blobs = layout.root / "io.containerd.content.v1.content" / "blobs" / "sha256"
    if not blobs.is_dir():
        return False
    return sum(blob.stat().st_size for blob in blobs.iterdir()) > MAX_STORE_BYTES


def import_images(layout: ContainerdLayout, images: Iterable[ImageArchive]) -> list[str]:
    """Import the archives whose reference the node lacks; the references imported."""
    present = image_references(layout)
    imported = []
    for image in images:
        if image.reference in present:
            continue
        ctr(layout, "images", "import", str(image.archive), timeout=IMPORT_TIMEOUT_SECONDS)
        imported.append(image.reference)
    return imported
