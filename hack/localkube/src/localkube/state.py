"""The record of a running cluster (``cluster.json``): how another shell finds what to stop."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from localkube.processes import RunningProcess, is_running

STATE_FILE = "cluster.json"


@dataclass(frozen=True)
class ClusterState:
    """What `localkube down` and the fixtures need to know about a running cluster."""

    directory: Path
    server: str
    kubeconfig: Path
    processes: tuple[RunningProcess, ...]
    # Whether a node runs: stopping it also puts the host back (localkube.node.lifecycle).
    node: bool = False

    def save(self) -> None:
        document = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "node": self.node,
            "processes": [{**asdict(p), "log": str(p.log)} for p in self.processes],
        }
        path = self.directory / STATE_FILE
        path.write_text(json.dumps(document, indent=2))

    @classmethod
    def load(cls, directory: Path) -> ClusterState | None:
        path = directory / STATE_FILE
        if not path.is_file():
            return None
        document = json.loads(path.read_text())
        processes = tuple(
            RunningProcess(p["name"], int(p["pid"]), p["executable"], Path(p["log"]))
            for p in document["processes"]
        )
        return cls(
            directory,
            document["server"],
            Path(document["kubeconfig"]),
            processes,
            node=bool(document.get("node", False)),
        )

    def running(self) -> bool:
        return bool(self.processes) and all(is_running(p) for p in self.processes)

    def describe(self) -> Mapping[str, object]:
        return {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "node": self.node,
            "processes": {p.name: p.pid for p in self.processes},
        }
