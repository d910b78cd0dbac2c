"""The node's volume provisioner: a `local` PersistentVolume (a folder on the node) per claim.

It does what an external provisioner does for the default StorageClass
(localkube.node.addons.PROVISIONER): for a claim the scheduler has placed on the node
(`volume.kubernetes.io/selected-node`), it makes a folder in the node's volumes folder and a
PersistentVolume of type `local` bound to the claim; when a released volume's reclaim policy is
Delete, it removes both. `local` volumes (not hostPath) so the kubelet applies the pods'
fsGroup to them, as it does to a real disk: a chart that forgets fsGroup fails here too.

Run as its own process: ``python -m localkube.node.provisioner --kubeconfig K --root DIR``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from localkube.node.addons import PROVISIONER

PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
WATCH_SECONDS = 60
log = logging.getLogger("localkube.provisioner")


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def wants_volume(claim: dict[str, Any]) -> bool:
    """A pending claim of our class, placed on a node, not bound to a volume yet."""
    annotations = claim["metadata"].get("annotations") or {}
    ours = any(annotations.get(key) == PROVISIONER for key in PROVISIONER_ANNOTATIONS)
    return (
        ours
        and SELECTED_NODE in annotations
        and not claim["spec"].get("volumeName")
        and (claim.get("status") or {}).get("phase") == "Pending"
    )


def persistent_volume(claim: dict[str, Any], path: Path, node: str) -> dict[str, Any]:
    """The volume for ``claim``: its size, access modes and class, pinned to its node."""
    meta = claim["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
            "accessModes": claim["spec"]["accessModes"],
            "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": claim["spec"].get("storageClassName"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }


def released_by_us(volume: dict[str, Any]) -> bool:
    annotations = volume["metadata"].get("annotations") or {}
    return (
        annotations.get(PROVISIONED_BY) == PROVISIONER
        and (volume.get("status") or {}).get("phase") in {"Released", "Failed"}
        and volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
    )


class Provisioner:
    def __init__(self, api: client.ApiClient, root: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.api = api
        self.root = root

    def provision(self, claim: dict[str, Any]) -> None:
        node = claim["metadata"]["annotations"][SELECTED_NODE]
        path = self.root / volume_name(claim)
        # Root-owned and 0755, like a fresh disk: the kubelet applies the pod's fsGroup.
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            self.core.create_persistent_volume(persistent_volume(claim, path, node))
        except ApiException as error:
            if error.status != 409:  # made already (a second event for the same claim)
                raise
        log.info("provisioned %s for %s/%s", path, *_claim_key(claim))

    def delete(self, volume: dict[str, Any]) -> None:
        path = Path(volume["spec"].get("local", {}).get("path", ""))
        if path.parent == self.root:
            shutil.rmtree(path, ignore_errors=True)
        try:
            self.core.delete_persistent_volume(volume["metadata"]["name"])
        except ApiException as error:
            if error.status != 404:
                raise
        log.info("deleted %s", volume["metadata"]["name"])

    def run_claims(self) -> None:
        self._run(self.core.list_persistent_volume_claim_for_all_namespaces, self._on_claim)

    def run_volumes(self) -> None:
        self._run(self.core.list_persistent_volume, self._on_volume)

    def _on_claim(self, claim: dict[str, Any]) -> None:
        if wants_volume(claim):
            self.provision(claim)

    def _on_volume(self, volume: dict[str, Any]) -> None:
        if released_by_us(volume):
            self.delete(volume)

    def _run(self, lister: Any, handle: Any) -> None:
        """List, then watch, forever; every event's object is checked afresh (level-based)."""
        while True:
            try:
                stream = watch.Watch().stream(lister, timeout_seconds=WATCH_SECONDS)
                for event in stream:
                    handle(self.api.sanitize_for_serialization(event["object"]))
            except Exception:  # a dropped watch, an API server restart: list and watch again
                log.exception("watch failed; starting again")
                time.sleep(1)


def _claim_key(claim: dict[str, Any]) -> tuple[str, str]:
    return claim["metadata"]["namespace"], claim["metadata"]["name"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localkube-provisioner", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True, help="the volumes' parent folder")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    arguments.root.mkdir(parents=True, exist_ok=True)
    provisioner = Provisioner(
        config.new_client_from_config(config_file=str(arguments.kubeconfig)), arguments.root
    )
    threading.Thread(target=provisioner.run_volumes, daemon=True, name="volumes").start()
    provisioner.run_claims()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
