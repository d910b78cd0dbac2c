"""`kubectl port-forward` to one pod, on 127.0.0.1, for as long as a `with` block runs.

On a real cluster the API and the operator run in pods; the local Prometheus, the traffic and
the tests reach them through port-forwards, as a person would with kubectl.
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
    pod: str,
    local_port: int,
    remote_port: int,
) -> list[str]:
    """The kubectl command line that forwards 127.0.0.1:`local_port` to the pod's port."""
    return [
        str(kubectl),
        f"--kubeconfig={kubeconfig}",
        "port-forward",
        f"--namespace={namespace}",
        # loopback only, IPv4 only: what the scrape configs and the tests dial
        "--address=127.0.0.1",
        f"pod/{pod}",
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
    """One pod port on 127.0.0.1:`local_port` (a free port unless given, e.g. to keep it when
    the pod behind it is replaced). `start` returns once the local port answers."""

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
            pod=pod,
            local_port=self.local_port,
            remote_port=remote_port,
        )
        self.process = ServerProcess(command, log_dir / f"port-forward-{pod}.log")

    def start(self, timeout: float = 30.0) -> PortForward:
        self.process.start()
        self.process.wait_until(
            lambda: port_answers(self.local_port), timeout, f"kubectl port-forward pod/{self.pod}"
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
