"""`kubectl port-forward` to a pod or a Service, on 127.0.0.1, while a `with` block runs.

On a cluster with nodes the API, the operator and kube-prometheus-stack run in pods; the
traffic and the tests reach them through port-forwards, as a person would with kubectl.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType

from localkube.kube import Kube
from localservers.ports import free_port
from localservers.process import ServerProcess


def port_forward_command(
    kubectl: Path,
    kubeconfig: Path,
    *,
    namespace: str,
    target: str,
    local_port: int,
    remote_port: int,
) -> list[str]:
    """The kubectl command line that forwards 127.0.0.1:`local_port` to the target's port.

    `target`: a pod's name, or `kind/name` (`service/x`: kubectl picks one of its pods)."""
    return [
        str(kubectl),
        f"--kubeconfig={kubeconfig}",
        "port-forward",
        f"--namespace={namespace}",
        # loopback only, IPv4 only: what the scrape configs and the tests dial
        "--address=127.0.0.1",
        target if "/" in target else f"pod/{target}",
        f"{local_port}:{remote_port}",
    ]


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class PortForward:
    """One pod's (or a Service's) port on 127.0.0.1:`local_port` (a free port unless given,
    e.g. to keep it when the pod behind it is replaced). `start` returns once it answers."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        pod: str,
        remote_port: int,
        log_dir: Path,
        *,
        local_port: int | None = None,
    ) -> None:
        self.pod = pod
        self.local_port = local_port or free_port()
        self.url = f"http://127.0.0.1:{self.local_port}"
        command = port_forward_command(
            kube.kubectl_path,
            kube.kubeconfig,
            namespace=namespace,
            target=pod,
            local_port=self.local_port,
            remote_port=remote_port,
        )
        self.process = ServerProcess(command, log_dir / f"port-forward-{pod.replace('/', '-')}.log")

    def start(self, timeout: float = 30.0) -> PortForward:
        self.process.start()
        self.process.wait_until(
            lambda: port_answers(self.local_port), timeout, f"kubectl port-forward {self.pod}"
        )
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> PortForward:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
