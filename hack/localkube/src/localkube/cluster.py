"""Run etcd, kube-apiserver and kube-controller-manager on free loopback ports.

The cluster's folder holds its certificates, etcd's data, the logs, the admin kubeconfig and
``cluster.json`` (the pids), which is how `localkube down` in another shell finds what to stop.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from localkube.build import CONTROL_PLANE, Reporter, ensure_binaries, report_to_stderr
from localkube.errors import ClusterStartError
from localkube.kubeconfig import write_client_certificate_kubeconfig
from localkube.pki import SERVICE_CLUSTER_IP_RANGE, ControlPlanePKI, create_pki
from localkube.processes import (
    RunningProcess,
    exit_code,
    is_running,
    start_process,
    stop_processes,
)

STATE_FILE = "cluster.json"
ETCD_DATA = "etcd"
PORT_ATTEMPTS = 3
PORT_TAKEN = "address already in use"
READY_TIMEOUT_SECONDS = 180.0
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class ClusterState:
    """What `localkube down` and the fixtures need to know about a running cluster."""

    directory: Path
    server: str
    kubeconfig: Path
    processes: tuple[RunningProcess, ...]

    def save(self) -> None:
        document = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
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
        return cls(directory, document["server"], Path(document["kubeconfig"]), processes)

    def running(self) -> bool:
        return bool(self.processes) and all(is_running(p) for p in self.processes)


def start_cluster(
    directory: Path, *, die_with_parent: bool, report: Reporter = report_to_stderr
) -> ClusterState:
    """Build (or reuse) the binaries and start a control plane whose files live in ``directory``.

    On any failure everything already started is stopped again before the error is raised.
    """
    binaries = ensure_binaries(CONTROL_PLANE, report)
    directory.mkdir(parents=True, exist_ok=True)
    pki = create_pki(directory / "pki")
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return _start(directory, binaries, pki, die_with_parent=die_with_parent, report=report)
        except ClusterStartError as error:
            # A free port can be taken by someone else between our probe and the bind.
            if PORT_TAKEN not in str(error) or attempt == PORT_ATTEMPTS:
                raise
            report(f"a port was taken meanwhile; starting again ({error})")
            shutil.rmtree(directory / ETCD_DATA, ignore_errors=True)
    raise AssertionError("unreachable")


def _start(
    directory: Path,
    binaries: dict[str, Path],
    pki: ControlPlanePKI,
    *,
    die_with_parent: bool,
    report: Reporter,
) -> ClusterState:
    etcd_port, etcd_peer_port, api_port, controller_manager_port = _free_ports(4)
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = write_client_certificate_kubeconfig(
        directory / "admin.kubeconfig",
        server=server,
        ca_pem=pki.ca.certificate.read_bytes(),
        certificate_pem=pki.admin.certificate.read_bytes(),
        key_pem=pki.admin.key.read_bytes(),
        user="localkube-admin",
    )
    controller_manager_kubeconfig = write_client_certificate_kubeconfig(
        directory / "controller-manager.kubeconfig",
        server=server,
        ca_pem=pki.ca.certificate.read_bytes(),
        certificate_pem=pki.controller_manager.certificate.read_bytes(),
        key_pem=pki.controller_manager.key.read_bytes(),
        user="system:kube-controller-manager",
    )
    state = ClusterState(directory, server, kubeconfig, ())
    report(f"starting a control plane in {directory} (API server {server})")
    started = time.monotonic()

    def launch(name: str, command: list[str]) -> RunningProcess:
        nonlocal state
        process = start_process(
            name, command, directory / "logs" / f"{name}.log", die_with_parent=die_with_parent
        )
        state = ClusterState(directory, server, kubeconfig, (*state.processes, process))
        state.save()  # before waiting, so a partial start can still be stopped from outside
        return process

    try:
        etcd = launch(
            "etcd",
            _etcd_command(binaries["etcd"], directory / ETCD_DATA, etcd_port, etcd_peer_port),
        )
        _wait_until(
            lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health", None), etcd, "etcd /health"
        )
        api_server = launch(
            "kube-apiserver",
            _api_server_command(binaries["kube-apiserver"], pki, etcd_port, api_port),
        )
        admin_tls = _client_tls(pki)
        _wait_until(lambda: _http_ok(f"{server}/readyz", admin_tls), api_server, "/readyz")
        controller_manager = launch(
            "kube-controller-manager",
            _controller_manager_command(
                binaries["kube-controller-manager"],
                pki,
                controller_manager_kubeconfig,
                directory / "controller-manager-certs",
                controller_manager_port,
            ),
        )
        _wait_until(
            lambda: _http_ok(
                f"https://127.0.0.1:{controller_manager_port}/healthz", _unverified_tls()
            ),
            controller_manager,
            "kube-controller-manager /healthz",
        )
        # Pods (of Jobs, say) are admitted only once the namespace's default ServiceAccount
        # exists: the controller manager making it is the sign that its controllers run.
        _wait_until(
            lambda: _http_ok(
                f"{server}/api/v1/namespaces/default/serviceaccounts/default", admin_tls
            ),
            controller_manager,
            "the default ServiceAccount (made by the controller manager)",
        )
    except BaseException:
        stop_cluster(state)
        raise
    report(f"control plane ready in {time.monotonic() - started:.1f}s")
    return state


def stop_cluster(state: ClusterState, *, keep_data: bool = True) -> None:
    """Stop the processes (controller manager first, etcd last) and forget the pid file.

    Without ``keep_data`` etcd's data (tens of MB of preallocated WAL) goes too; the
    certificates and logs stay for a look after a failure.
    """
    stop_processes(tuple(reversed(state.processes)))
    (state.directory / STATE_FILE).unlink(missing_ok=True)
    if not keep_data:
        shutil.rmtree(state.directory / ETCD_DATA, ignore_errors=True)


def _etcd_command(etcd: Path, data_dir: Path, port: int, peer_port: int) -> list[str]:
    client_url = f"http://127.0.0.1:{port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    return [
        str(etcd),
        "--name=localkube",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=localkube={peer_url}",
        # A throwaway single-member store: durability is not worth the fsync latency here.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _api_server_command(binary: Path, pki: ControlPlanePKI, etcd_port: int, port: int) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.api_server.certificate}",
        f"--tls-private-key-file={pki.api_server.key}",
        f"--client-ca-file={pki.ca.certificate}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _controller_manager_command(
    binary: Path, pki: ControlPlanePKI, kubeconfig: Path, cert_dir: Path, port: int
) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca.certificate}",
        f"--cluster-signing-cert-file={pki.ca.certificate}",
        f"--cluster-signing-key-file={pki.ca.key}",
        # Each controller acts as its own ServiceAccount, with the bootstrap RBAC roles.
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _client_tls(pki: ControlPlanePKI) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.certificate))
    context.load_cert_chain(str(pki.admin.certificate), str(pki.admin.key))
    return context


def _unverified_tls() -> ssl.SSLContext:
    # The controller manager serves /healthz with a certificate it made itself, on loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_ok(url: str, tls: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=tls) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def _wait_until(ready: Callable[[], bool], process: RunningProcess, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        code = exit_code(process)
        if code is not None or not is_running(process):
            raise ClusterStartError(
                f"{process.name} exited (code {code}) before {what} was ready; "
                f"its log ({process.log}) ends with:\n{log_tail(process.log)}"
            )
        if ready():
            return
        time.sleep(0.25)
    raise ClusterStartError(
        f"{what} not ready after {READY_TIMEOUT_SECONDS:.0f}s; {process.name}'s log "
        f"({process.log}) ends with:\n{log_tail(process.log)}"
    )


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def describe(state: ClusterState) -> Mapping[str, object]:
    return {
        "server": state.server,
        "kubeconfig": str(state.kubeconfig),
        "processes": {p.name: p.pid for p in state.processes},
    }
