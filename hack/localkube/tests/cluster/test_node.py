"""The local node: pods run with their exact specs, reach each other and the API server by name,
stay on this machine, and the node leaves the host as it found it.

The `node` tests use the session's cluster (which gets the node because they ask for it); the
`own_node` ones bring up nodes of their own through `localkube up` and run before it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from localkube.addresses import BRIDGE, CLUSTER_DNS_IP
from localkube.cluster import clean_up_abandoned_node
from localkube.images import podman_image_archive
from localkube.kube import Kube
from localkube.node.hoststate import differences, mount_points, read_host_state
from localkube.node.lifecycle import NODE_MARKER
from localkube.node.network import GUARD_CHAIN, GUARD_TABLE
from localkube.processes import pid_alive
from localkube.state import STATE_FILE
from localkube.versions import KUBERNETES_VERSION
from localkube.waiting import wait_for

from .test_lifecycle import localkube

REPO = Path(__file__).resolve().parents[4]


def _kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    kubectl = json.loads(localkube("paths").stdout)["kubectl"]
    return subprocess.run(
        [kubectl, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def _ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


@pytest.fixture
def host_without_an_abandoned_node() -> None:
    """A node that an earlier run killed before its `down` (a CI job past its time) still has the
    kubelet's sysctls and chains on the host: the state to compare with is the host without it."""
    clean_up_abandoned_node(None)


@pytest.mark.own_node
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.usefixtures("node_binaries", "host_without_an_abandoned_node")
def test_up_runs_a_ready_node_with_dns_and_down_leaves_the_host_as_it_was(
    tmp_path: Path,
) -> None:
    before = read_host_state()
    cluster_dir = tmp_path / "cluster"
    started = localkube("--dir", str(cluster_dir), "up")
    assert started.returncode == 0, started.stderr
    kubeconfig = started.stdout.strip().removeprefix("export KUBECONFIG=")
    state = json.loads((cluster_dir / STATE_FILE).read_text())
    pids = [p["pid"] for p in state["processes"]]
    try:
        assert {"kubelet", "containerd", "kube-proxy", "kube-scheduler"} <= {
            p["name"] for p in state["processes"]
        }
        nodes = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
        assert len(nodes) == 1
        assert _ready(nodes[0])
        assert nodes[0]["status"]["nodeInfo"]["kubeletVersion"] == KUBERNETES_VERSION
        assert nodes[0]["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd")
        pods = json.loads(
            _kubectl(kubeconfig, "get", "pods", "-A", "-l", "k8s-app=kube-dns", "-o", "json").stdout
        )["items"]
        assert [p["status"]["phase"] for p in pods] == ["Running"]
        classes = json.loads(_kubectl(kubeconfig, "get", "storageclass", "-o", "json").stdout)
        defaults = [
            c["metadata"]["name"]
            for c in classes["items"]
            if c["metadata"]
            .get("annotations", {})
            .get("storageclass.kubernetes.io/is-default-class")
            == "true"
        ]
        assert defaults == ["standard"]
    finally:
        stopped = localkube("--dir", str(cluster_dir), "down")
    assert stopped.returncode == 0, stopped.stderr
    assert not [pid for pid in pids if pid_alive(pid)]
    assert not [p for p in mount_points() if p.startswith(str(cluster_dir))]
    assert differences(before, read_host_state()) == []


OWNER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from localkube.cluster import start_cluster
    state = start_cluster(Path(sys.argv[1]), die_with_parent=True, node=True)
    print(json.dumps([p.pid for p in state.processes]), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.own_node
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.usefixtures("node_binaries", "host_without_an_abandoned_node")
def test_a_node_whose_owner_was_killed_is_cleaned_up_by_the_next_start(tmp_path: Path) -> None:
    before = read_host_state()
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "killed")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, "the owner did not start its node"
        pids: list[int] = json.loads(line)
    finally:
        owner.send_signal(signal.SIGKILL)  # nothing of ours runs: the host keeps the node's setup
        owner.wait()
    wait_for(
        lambda: not [pid for pid in pids if pid_alive(pid)],
        timeout=30,
        what="the killed owner's processes to exit",
    )
    assert Path(f"/sys/class/net/{BRIDGE}").exists()  # left behind, for the next start to find

    cluster_dir = tmp_path / "next"
    started = localkube("--dir", str(cluster_dir), "up")
    try:
        assert started.returncode == 0, started.stderr
        assert "cleaning up the node of a cluster" in started.stderr
        assert NODE_MARKER.read_text().strip() == str(cluster_dir)
    finally:
        stopped = localkube("--dir", str(cluster_dir), "down")
    assert stopped.returncode == 0, stopped.stderr
    assert differences(before, read_host_state()) == []


# --- on the session's node ------------------------------------------------------------------


PROBE = "probe"
SERVICE = "web"


@pytest.fixture(scope="module")
def base_image(kube: Kube) -> str:
    """The Debian base image of hack/images (python3 inside), on the node."""
    built = subprocess.run(
        ["bash", str(REPO / "hack/images/base.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"hack/images/base.sh failed:\n{built.stderr[-3000:]}")
    reference = built.stdout.strip()
    kube.import_images([podman_image_archive(reference, lambda _: None)])
    return reference


@pytest.fixture
def probe(kube: Kube, kube_namespace: str, base_image: str) -> str:
    """A web server pod under the restricted standard, with a claim of the default class."""
    objects = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROBE, "labels": {"app": PROBE}},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 999,
                    "runAsGroup": 999,
                    "fsGroup": 999,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "web",
                        "image": base_image,
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-m", "http.server", "8080", "-d", "/data"],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {"limits": {"memory": "64Mi"}},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE},
            "spec": {"selector": {"app": PROBE}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]
    kube.kubectl(
        "apply",
        "-n",
        kube_namespace,
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": objects}),
    )
    kube.kubectl(
        "wait", "-n", kube_namespace, "--for=condition=Ready", f"pod/{PROBE}", "--timeout=120s"
    )
    # A ready pod is not yet a reachable Service: kube-proxy programs its rules on its next sync,
    # and until then the Service rejects connections (refused).
    service = json.loads(
        kube.kubectl("get", "svc", SERVICE, "-n", kube_namespace, "-o", "json").stdout
    )
    wait_for(
        lambda: _answers(f"http://{service['spec']['clusterIP']}/"),
        timeout=60,
        what=f"kube-proxy to route Service {SERVICE} to the pod",
    )
    return kube_namespace


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _in_probe(kube: Kube, namespace: str, code: str) -> str:
    return kube.kubectl("exec", "-n", namespace, PROBE, "--", "python3", "-c", code).stdout


@pytest.mark.node
@pytest.mark.cluster
@pytest.mark.images
@pytest.mark.slow
def test_a_pod_resolves_services_and_reaches_the_api_server_by_name(kube: Kube, probe: str) -> None:
    found = json.loads(
        _in_probe(
            kube,
            probe,
            textwrap.dedent(
                f"""
                import json, socket, ssl, time, urllib.request
                token = open("/var/run/secrets/kubernetes.io/serviceaccount/token").read()
                ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
                request = urllib.request.Request(
                    "https://kubernetes.default.svc/api",
                    headers={{"Authorization": "Bearer " + token}},
                )
                tls = ssl.create_default_context(cafile=ca)
                # A Service made a moment ago: the cluster DNS learns of it through its watch.
                deadline = time.monotonic() + 20
                while True:
                    try:
                        web = urllib.request.urlopen("http://{SERVICE}.{probe}.svc/").status
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                api = json.load(urllib.request.urlopen(request, context=tls))
                print(json.dumps({{
                    "kubernetes": socket.gethostbyname("kubernetes.default"),
                    "service": socket.gethostbyname("{SERVICE}"),
                    "web": web,
                    "api": api["kind"],
                    "resolver": open("/etc/resolv.conf").read(),
                }}))
                """
            ),
        )
    )
    assert found["kubernetes"] == "10.0.0.1"
    assert found["web"] == 200
    assert found["api"] == "APIVersions"
    assert f"nameserver {CLUSTER_DNS_IP}" in found["resolver"]
    service = json.loads(kube.kubectl("get", "svc", SERVICE, "-n", probe, "-o", "json").stdout)
    pod = json.loads(kube.kubectl("get", "pod", PROBE, "-n", probe, "-o", "json").stdout)
    assert found["service"] == service["spec"]["clusterIP"]
    assert pod["status"]["podIP"].startswith("10.244.0.")


@pytest.mark.node
@pytest.mark.cluster
@pytest.mark.images
@pytest.mark.slow
def test_the_host_reaches_the_pod_through_its_service_and_a_port_forward(
    kube: Kube, probe: str
) -> None:
    _in_probe(kube, probe, "open('/data/hello.txt', 'w').write('hello')")
    service = json.loads(kube.kubectl("get", "svc", SERVICE, "-n", probe, "-o", "json").stdout)
    cluster_ip = service["spec"]["clusterIP"]
    assert httpx.get(f"http://{cluster_ip}/hello.txt", timeout=10).text == "hello"
    forward = subprocess.Popen(
        [str(kube.kubectl_path), f"--kubeconfig={kube.kubeconfig}", "port-forward", "-n", probe,
         f"pod/{PROBE}", ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> 8080"
        port = int(line.split("127.0.0.1:")[1].split()[0])
        assert httpx.get(f"http://127.0.0.1:{port}/hello.txt", timeout=10).text == "hello"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.mark.node
@pytest.mark.cluster
@pytest.mark.images
@pytest.mark.slow
def test_the_volume_takes_the_pods_fs_group_like_a_disk(kube: Kube, probe: str) -> None:
    stat = json.loads(
        _in_probe(
            kube,
            probe,
            "import json, os; s = os.stat('/data'); "
            "print(json.dumps({'uid': s.st_uid, 'gid': s.st_gid, 'mode': s.st_mode & 0o7777}))",
        )
    )
    assert stat["uid"] == 0  # made by the provisioner, as a fresh disk's root is
    assert stat["gid"] == 999  # the kubelet applied the pod's fsGroup
    assert stat["mode"] & 0o2070 == 0o2070  # group-writable, set-group-ID


def _guard_drops() -> int:
    listed = subprocess.run(
        ["iptables", "-w", "5", "-t", GUARD_TABLE, "-L", GUARD_CHAIN, "-v", "-x", "-n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(int(line.split()[0]) for line in listed.splitlines()[2:] if line.strip())


@pytest.mark.node
@pytest.mark.cluster
@pytest.mark.images
@pytest.mark.slow
def test_traffic_from_a_pod_to_anything_off_the_machine_is_dropped_on_the_node(
    kube: Kube, probe: str
) -> None:
    dropped_before = _guard_drops()
    # TEST-NET-2 (RFC 5737): documentation addresses, routed by default route if at all.
    answer = _in_probe(
        kube,
        probe,
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('198.51.100.7', 80), timeout=2); print('connected')\n"
        "except OSError as error:\n"
        "    print(type(error).__name__)",
    )
    assert answer.strip() in {"TimeoutError", "timeout"}
    wait_for(lambda: _guard_drops() > dropped_before, timeout=10, what="the guard to count a drop")


@pytest.mark.node
@pytest.mark.cluster
@pytest.mark.images
@pytest.mark.slow
def test_logs_and_exec_go_through_the_kubelet(kube: Kube, probe: str) -> None:
    service = json.loads(kube.kubectl("get", "svc", SERVICE, "-n", probe, "-o", "json").stdout)
    httpx.get(f"http://{service['spec']['clusterIP']}/", timeout=10)

    def logged() -> bool:
        # http.server logs each request on stderr, which the kubelet keeps as the pod's log.
        return '"GET / HTTP/1.1" 200' in kube.kubectl("logs", "-n", probe, PROBE).stdout

    wait_for(logged, timeout=30, what="the request in the pod's log")
    assert _in_probe(kube, probe, "import os; print(os.getuid())").strip() == "999"
