"""Tilt itself (built from its Go module) on the Tiltfile, against the local node: `tilt ci`
brings every resource up and sends traffic, a broken chart value fails it with Tilt's error,
and `tilt up` live-updates an edited file into the running pod.

It runs in a copy of the working tree (the edits stay there) on the session's cluster, which
holds the machine's node (marker `node`), beside what the end-to-end module left there. That
module installs the same charts (releases credit-api and monitoring, namespaces credit and
monitoring), uninstalls them at its end and leaves kube-prometheus-stack installed. So:

- the app goes to a namespace of its own, tilt-credit, and `tilt down --delete-namespaces`
  removes what Tilt applied when the module is done;
- kube-prometheus-stack is the same release, upgraded in place (one prometheus-operator per
  cluster), its images imported once for both;
- our operator's chart (namespace monitoring, cluster-wide RBAC, the CRD) exists once per
  cluster: the end-to-end module, which runs before this one, has uninstalled it by then.

Cheap where it can be: hack/tilt/image.sh finds build.sh's images by their content hash (the
copy hashes as the working tree does), builds the live-update layer once and imports each
image into the node once; later builds of the same code only tag it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.tilt import prepare_node, tilt_command, tilt_environment
from localkube.kube import Kube
from localkube.pytest_plugin import unavailable
from localkube.tools import tilt_binary
from localkube.waiting import wait_for

pytestmark = [
    pytest.mark.tilt,
    pytest.mark.cluster,
    pytest.mark.node,
    pytest.mark.images,
    pytest.mark.slow,
    # Tilt's cold build and the images' first builds, when nothing is cached yet.
    pytest.mark.timeout(3600),
]

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "tilt-credit"
ROWS = 200
TILT_TIMEOUT = 1200
# The API's pods, not its PostgreSQL's (the chart's labels).
API_PODS = "app.kubernetes.io/name=credit-api,app.kubernetes.io/component=api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_working_tree(destination: Path) -> None:
    """The tracked and untracked files (not the ignored ones) of this working tree, as the
    files of a git repository of its own: build.sh hashes the same files to the same tags."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    )
    files = [name for name in listed.stdout.decode().split("\0") if (REPO / name).is_file()]
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    subprocess.run(["git", "init", "--quiet"], cwd=destination, check=True, timeout=60)
    subprocess.run(
        ["git", "add", "--force", "--pathspec-from-file=-", "--pathspec-file-nul"],
        cwd=destination,
        input="\0".join(files).encode(),
        check=True,
        timeout=120,
    )


@dataclass(frozen=True)
class Tilt:
    """The pinned tilt in the copy, on the session's cluster, its API on `port`."""

    checkout: Path
    env: Mapping[str, str]
    port: int
    logs: Path

    def run(self, subcommand: str, *arguments: str, timeout: float = 120) -> tuple[int, str]:
        """Exit status and output (also kept in logs/<subcommand>-<n>.log)."""
        log = self._log_file(subcommand)
        # `tilt down` serves no API: it has no --port.
        port = [] if subcommand == "down" else [f"--port={self.port}"]
        command = tilt_command(subcommand, [*arguments, *port], tilt_binary())
        with log.open("w") as output:
            completed = subprocess.run(
                command,
                cwd=self.checkout,
                env=dict(self.env),
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        return completed.returncode, log.read_text()

    def start_up(self) -> tuple[subprocess.Popen[bytes], Path]:
        log = self._log_file("up")
        with log.open("w") as output:
            process = subprocess.Popen(
                [str(tilt_binary()), "up", "--stream", f"--port={self.port}"],
                cwd=self.checkout,
                env=dict(self.env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log

    def resource(self, name: str) -> dict[str, Any]:
        """`tilt get uiresource <name>` from the running `tilt up`; {} while it has none."""
        completed = subprocess.run(
            [str(tilt_binary()), "get", "uiresource", name, "-o", "json", f"--port={self.port}"],
            cwd=self.checkout,
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        found: dict[str, Any] = json.loads(completed.stdout) if completed.returncode == 0 else {}
        return found

    def _log_file(self, subcommand: str) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{subcommand}-{len(list(self.logs.glob(f'{subcommand}-*')))}.log"


@pytest.fixture(scope="module")
def node(kube: Kube) -> Kube:
    if kube.node_runtime is None:
        unavailable(
            "the Tiltfile's local-node mode runs on the local node; this session's cluster "
            "has none (KUBECONFIG names another kind of cluster)"
        )
    return kube


@pytest.fixture(scope="module")
def settings() -> dict[str, Any]:
    """.tilt-settings.json of the copy: a namespace and ports of its own, fewer rows."""
    ports = {"api": free_port(), "prometheus": free_port(), "alertmanager": free_port()}
    return {
        "namespace": NAMESPACE,
        "port_forwards": {**ports, "grafana": free_port()},
        "traffic": {"rows": ROWS},
    }


@pytest.fixture(scope="module")
def tilt(
    node: Kube, settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tilt]:
    checkout = tmp_path_factory.mktemp("tilt") / "checkout"
    copy_working_tree(checkout)
    (checkout / ".tilt-settings.json").write_text(json.dumps(settings))
    prepare_node(node, say=print)
    env = tilt_environment(node.kubeconfig, say=print)
    session = Tilt(checkout, env, free_port(), checkout.parent / "logs")
    try:
        yield session
    finally:
        code, output = session.run("down", "--delete-namespaces", timeout=600)
        assert code == 0, output[-4000:]


def stored_predictions(kube: Kube) -> int:
    counted = kube.kubectl(
        "exec", "-n", NAMESPACE, "statefulset/credit-api-postgresql", "--", "sh", "-c",
        'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT count(*) FROM predictions"',
    )  # fmt: skip
    return int(counted.stdout.strip())


def test_a_broken_chart_value_fails_tilt_ci_with_tilts_error(tilt: Tilt) -> None:
    """Nothing is deployed: the Tiltfile's helm() refuses the value, and `tilt ci` says so."""
    values = tilt.checkout / "hack" / "kind" / "dev-credit-api-values.yaml"
    original = values.read_text()
    values.write_text(original.replace("replicaCount: 1\n", "replicaCount: -1\n"))
    try:
        code, output = tilt.run("ci", timeout=600)
    finally:
        values.write_text(original)
    assert code != 0, output[-4000:]
    assert "replicaCount" in output, output[-4000:]
    assert "Tiltfile" in output, output[-4000:]


def test_tilt_ci_brings_every_resource_up_and_sends_traffic(tilt: Tilt, node: Kube) -> None:
    started = time.monotonic()
    code, output = tilt.run("ci", timeout=TILT_TIMEOUT + 60)
    elapsed = time.monotonic() - started
    print(f"tilt ci: exit {code} after {elapsed:.0f} s")
    assert code == 0, output[-6000:]
    assert f"traffic: sent {ROWS} normal applications" in output, output[-6000:]
    # The local node's images, as the Tiltfile named them for the kubelet.
    deployment = json.loads(
        node.kubectl("get", "deployment", "credit-api", "-n", NAMESPACE, "-o", "json").stdout
    )
    (api,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "api"]
    assert api["image"].startswith("credit-api:tilt-build-"), api["image"]
    assert deployment["status"].get("readyReplicas") == 1
    # Every prediction the traffic button got was logged to the chart's PostgreSQL.
    wait_for(lambda: stored_predictions(node) == ROWS, timeout=60, what=f"{ROWS} stored rows")


def api_title(url: str) -> str:
    try:
        answer = httpx.get(f"{url}/openapi.json", timeout=5)
    except httpx.TransportError:
        return ""
    if answer.status_code != 200:
        return ""
    title: str = answer.json()["info"]["title"]
    return title


def api_pod(kube: Kube) -> dict[str, Any]:
    pods = json.loads(
        kube.kubectl("get", "pods", "-n", NAMESPACE, "-l", API_PODS, "-o", "json").stdout
    )["items"]
    running = [p for p in pods if p["metadata"].get("deletionTimestamp") is None]
    assert len(running) == 1, [p["metadata"]["name"] for p in running]
    pod: dict[str, Any] = running[0]
    return pod


def test_tilt_up_live_updates_an_edited_file_without_a_rebuild(
    tilt: Tilt, node: Kube, settings: dict[str, Any]
) -> None:
    url = f"http://127.0.0.1:{settings['port_forwards']['api']}"
    process, log = tilt.start_up()
    try:
        wait_for(
            lambda: (
                tilt.resource("credit-api").get("status", {}).get("runtimeStatus") == "ok"
                and api_title(url) == "Credit scoring API"
            ),
            timeout=TILT_TIMEOUT,
            what="`tilt up` to serve the API",
        )
        before = api_pod(node)
        builds = log.read_text().count("Custom Build:")
        main = tilt.checkout / "app" / "src" / "credit_api" / "main.py"
        main.write_text(
            main.read_text().replace('"Credit scoring API"', '"Credit scoring API, live"')
        )
        wait_for(
            lambda: api_title(url) == "Credit scoring API, live",
            timeout=180,
            what="the running pod to serve the edited file",
        )
        after = api_pod(node)
        text = log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
    # The same pod, container and image: the file was copied in and the process restarted.
    assert after["metadata"]["name"] == before["metadata"]["name"]
    (was,) = [s for s in before["status"]["containerStatuses"] if s["name"] == "api"]
    (now,) = [s for s in after["status"]["containerStatuses"] if s["name"] == "api"]
    assert (now["containerID"], now["imageID"]) == (was["containerID"], was["imageID"])
    assert now["restartCount"] == was["restartCount"]
    assert text.count("Custom Build:") == builds, "an image was built after the edit"
    assert "restart-on-sync: live update copied new files" in text
