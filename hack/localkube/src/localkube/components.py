"""The command lines of the control plane's components: every flag, and why where it matters."""

from __future__ import annotations

from pathlib import Path

from localkube.addresses import SERVICE_CLUSTER_IP_RANGE
from localkube.pki import ControlPlanePKI

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


def etcd_command(etcd: Path, data_dir: Path, port: int, peer_port: int) -> list[str]:
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


def api_server_command(
    binary: Path, pki: ControlPlanePKI, etcd_port: int, port: int, *, address: str
) -> list[str]:
    """``address``: loopback for a control plane alone; the node's bridge address with a node,
    where the pods reach it (through the `kubernetes` Service) and the kubelet is reached."""
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.api_server.certificate}",
        f"--tls-private-key-file={pki.api_server.key}",
        f"--client-ca-file={pki.ca.certificate}",
        # Node: a kubelet may only read what its own pods use (and NodeRestriction below).
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        # logs, exec and port-forward: the API server calls the kubelet at the node's address.
        f"--kubelet-client-certificate={pki.api_server_kubelet_client.certificate}",
        f"--kubelet-client-key={pki.api_server_kubelet_client.key}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.service_account_public_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_command(
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


def scheduler_command(binary: Path, kubeconfig: Path, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]
