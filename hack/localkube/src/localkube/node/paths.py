"""Where a node keeps what cannot live in the cluster's folder.

Unix sockets' paths may not exceed 104 bytes, and the kubelet's and containerd's data folders
hold sockets several levels down; a cluster's folder can be deep (pytest's temporary folders).
The machine has one node at a time, so these are fixed, short, and removed when it stops.
"""

from __future__ import annotations

from pathlib import Path

from localkube.paths import cache_root

# containerd's socket and the marker naming the cluster that holds the node.
RUNTIME_DIR = Path("/run/localkube")
# containerd's state, the kubelet's root, the CNI address book, the volumes.
DATA_DIR = Path("/var/lib/localkube")


def image_store() -> Path:
    """containerd's root: the images (and their unpacked layers) a node imported, kept in the
    cache from one node to the next. Importing them again takes minutes and removing their
    hundreds of thousands of files as long; a new node finds them there and removes the last
    one's containers instead (localkube.node.containerd.remove_containers)."""
    return cache_root() / "node" / "containerd"
