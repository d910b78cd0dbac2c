"""The port-forward helper: its kubectl command line, and waiting for the port (fake kubectl)."""

from __future__ import annotations

import socket
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.portforward import PortForward, port_answers, port_forward_command
from localservers.ports import free_port


def test_the_command_forwards_one_pod_port_on_ipv4_loopback() -> None:
    command = port_forward_command(
        Path("/opt/kube/kubectl"),
        Path("/home/me/.kube/kind.kubeconfig"),
        namespace="monitoring",
        target="monitoring-operator-7d9c5b8f6-x2kqv",
        local_port=41234,
        remote_port=8080,
    )
    assert command == [
        "/opt/kube/kubectl",
        "--kubeconfig=/home/me/.kube/kind.kubeconfig",
        "port-forward",
        "--namespace=monitoring",
        "--address=127.0.0.1",
        "pod/monitoring-operator-7d9c5b8f6-x2kqv",
        "41234:8080",
    ]


@dataclass
class FakeKube:
    kubectl_path: Path
    kubeconfig: Path


# Listens on the local port of its last argument, as kubectl port-forward does once connected.
LISTENING_KUBECTL = """\
    import socket, sys, time
    local = int(sys.argv[-1].split(":")[0])
    time.sleep(0.5)  # connecting to the API server first
    server = socket.create_server(("127.0.0.1", local))
    print(f"Forwarding from 127.0.0.1:{local} -> {sys.argv[-1].split(':')[1]}", flush=True)
    while True:
        server.accept()[0].close()
"""
FAILING_KUBECTL = """\
    import sys
    print('error: unable to forward port because pod is not running. Current status=Pending')
    sys.exit(1)
"""


def _fake_kube(tmp_path: Path, script: str) -> FakeKube:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n" + textwrap.dedent(script))
    kubectl.chmod(0o755)
    return FakeKube(kubectl, tmp_path / "kubeconfig")


def test_start_returns_once_the_local_port_answers_and_stop_frees_it(tmp_path: Path) -> None:
    kube = _fake_kube(tmp_path, LISTENING_KUBECTL)
    port = free_port()
    with PortForward(kube, "credit", "credit-api-0", 8000, tmp_path, local_port=port) as forward:  # type: ignore[arg-type]
        assert forward.url == f"http://127.0.0.1:{port}"
        assert port_answers(port)
        assert "Forwarding from" in forward.process.log_tail()
    assert not forward.process.running()
    assert not port_answers(port)


def test_a_port_forward_that_exits_fails_with_kubectls_message(tmp_path: Path) -> None:
    kube = _fake_kube(tmp_path, FAILING_KUBECTL)
    forward = PortForward(kube, "credit", "credit-api-0", 8000, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="pod is not running"):
        forward.start(timeout=10)
    forward.stop()


def test_a_free_port_does_not_answer() -> None:
    assert not port_answers(free_port())
    with socket.create_server(("127.0.0.1", 0)) as server:
        assert port_answers(server.getsockname()[1])
