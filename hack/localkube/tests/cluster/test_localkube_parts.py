"""The pieces of localkube that need no running control plane."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from localkube import gotool
from localkube.addresses import NODE_ADDRESS
from localkube.build import KUBECTL, ensure_binaries, go_build_output_name, ldflags
from localkube.crds import crd_name
from localkube.errors import MissingToolError
from localkube.kubeconfig import read_server_and_ca, write_token_kubeconfig
from localkube.node.hoststate import HostState, differences
from localkube.paths import go_modules_dir
from localkube.pki import API_SERVER_DNS_NAMES, KUBERNETES_SERVICE_IP, create_pki
from localkube.processes import RunningProcess, is_running, start_process
from localkube.pytest_plugin import namespace_name, unavailable
from localkube.state import STATE_FILE, ClusterState
from localkube.versions import KUBERNETES, staging_version
from localkube.waiting import wait_for


def test_staging_modules_are_published_as_v0_of_the_same_minor_and_patch() -> None:
    assert staging_version("v1.36.3") == "v0.36.3"
    with pytest.raises(ValueError, match=r"not a Kubernetes 1\.x version"):
        staging_version("v2.0.0")


def test_go_names_the_binary_of_a_major_version_module_after_its_parent() -> None:
    assert go_build_output_name("go.etcd.io/etcd/server/v3") == "server"
    assert go_build_output_name("k8s.io/kubernetes/cmd/kubectl") == "kubectl"


def test_the_kubernetes_build_stamps_its_release_version() -> None:
    flags = " ".join(ldflags(KUBERNETES))
    assert "-s -w" in flags
    version = KUBERNETES.version
    minor = version.split(".")[1]
    assert f"-X k8s.io/component-base/version.gitVersion={version}" in flags
    assert f"-X k8s.io/component-base/version.gitMinor={minor}" in flags
    assert f"-X k8s.io/client-go/pkg/version.gitVersion={version}" in flags


def test_crd_file_names_map_to_crd_names() -> None:
    path = Path("monitoring.coreos.com_servicemonitors.yaml")
    assert crd_name(path) == "servicemonitors.monitoring.coreos.com"


@pytest.mark.parametrize(
    "test_name",
    ["test_x[param-1]", "Test_Upper_CASE", "a" * 200, "[]"],
)
def test_namespace_names_are_valid_dns_labels(test_name: str) -> None:
    name = namespace_name(test_name)
    assert len(name) <= 63
    assert name[0].isalnum()
    assert name[-1].isalnum()
    assert all(c.islower() or c.isdigit() or c == "-" for c in name)
    assert namespace_name(test_name) != name  # unique per call


def test_the_pki_chains_to_its_ca_and_names_the_api_server(tmp_path: Path) -> None:
    pki = create_pki(tmp_path, "node-a")
    ca = x509.load_pem_x509_certificate(pki.ca.certificate.read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    identities = (
        pki.api_server,
        pki.admin,
        pki.controller_manager,
        pki.scheduler,
        pki.kubelet,
        pki.kube_proxy,
        pki.api_server_kubelet_client,
    )
    for pair in identities:
        certificate = x509.load_pem_x509_certificate(pair.certificate.read_bytes())
        certificate.verify_directly_issued_by(ca)
        assert oct(pair.key.stat().st_mode & 0o777) == "0o600"

    serving = x509.load_pem_x509_certificate(pki.api_server.certificate.read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(API_SERVER_DNS_NAMES) <= set(names.get_values_for_type(x509.DNSName))
    addresses = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", KUBERNETES_SERVICE_IP, NODE_ADDRESS} <= addresses

    admin = x509.load_pem_x509_certificate(pki.admin.certificate.read_bytes())
    organizations = admin.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert [o.value for o in organizations] == ["system:masters"]


def test_the_kubelet_is_the_node_its_certificate_names(tmp_path: Path) -> None:
    """The Node authorizer grants a kubelet only what its own node's pods need, by this name."""
    pki = create_pki(tmp_path, "node-a")
    kubelet = x509.load_pem_x509_certificate(pki.kubelet.certificate.read_bytes())
    common_names = kubelet.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    organizations = kubelet.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert [n.value for n in common_names] == ["system:node:node-a"]
    assert [o.value for o in organizations] == ["system:nodes"]


def test_a_token_kubeconfig_round_trips_server_and_ca(tmp_path: Path) -> None:
    path = write_token_kubeconfig(
        tmp_path / "sa.kubeconfig",
        server="https://127.0.0.1:6443",
        ca_pem=b"-----BEGIN CERTIFICATE-----\n",
        token="abc",
        user="system:serviceaccount:ns:sa",
    )
    assert read_server_and_ca(path) == ("https://127.0.0.1:6443", b"-----BEGIN CERTIFICATE-----\n")


def test_down_stops_the_processes_of_a_pid_file_from_another_process(tmp_path: Path) -> None:
    """What a half-started cluster leaves (its pid file is written before waiting) is stoppable."""
    sleeper = start_process(
        "sleeper", ["/bin/sleep", "300"], tmp_path / "sleep.log", die_with_parent=True
    )
    ClusterState(tmp_path, "https://127.0.0.1:1", tmp_path / "kubeconfig", (sleeper,)).save()
    stopped = subprocess.run(
        [sys.executable, "-m", "localkube", "--dir", str(tmp_path), "down"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not is_running(sleeper), timeout=10, what="the sleeper to be stopped")
    assert not (tmp_path / STATE_FILE).exists()


def test_down_leaves_alone_a_pid_that_now_belongs_to_another_program(tmp_path: Path) -> None:
    other = subprocess.Popen(["/bin/sleep", "300"])
    try:
        recycled = RunningProcess("etcd", other.pid, "/usr/local/bin/etcd", tmp_path / "x.log")
        ClusterState(tmp_path, "https://127.0.0.1:1", tmp_path / "kubeconfig", (recycled,)).save()
        subprocess.run(
            [sys.executable, "-m", "localkube", "--dir", str(tmp_path), "down"],
            check=True,
            timeout=60,
            capture_output=True,
        )
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_without_go_the_error_says_what_is_missing_and_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CREDIT_MONITORING_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(gotool, "FALLBACK_GO", str(tmp_path / "no-go"))
    with pytest.raises(MissingToolError, match=r"Go toolchain.*install it") as missing:
        ensure_binaries((KUBECTL,))
    # The version the wrapper module asks for, not a copy of it that could go stale.
    required = gotool.go_directive(go_modules_dir() / "kubernetes" / "go.mod")
    assert f"(`go`, {required} or newer)" in str(missing.value)


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no go here"):
        unavailable("no go here")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="no go here"):
        unavailable("no go here")


def test_host_differences_are_what_a_node_leaves_not_what_others_do() -> None:
    before = HostState(
        sysctls={"net/ipv4/ip_forward": "0"},
        chains={"iptables filter": []},
        links=["eth0"],
        mounts=["/"],
        cgroups=["memory/user"],
        paths=[],
    )
    after = HostState(
        sysctls={"net/ipv4/ip_forward": "1"},
        chains={"iptables filter": ["KUBE-FORWARD"]},
        links=["eth0", "localkube0", "veth1234"],
        mounts=["/", "/var/lib/localkube/containerd/state/x/rootfs", "/var/lib/containers/x"],
        cgroups=["memory/user", "memory/localkube", "cpu/buildah-42"],
        paths=["/var/lib/kubelet"],
    )
    assert differences(before, after) == [
        "sysctl net/ipv4/ip_forward: 0 -> 1",
        "iptables filter chain KUBE-FORWARD",
        "link localkube0",
        "mount /var/lib/localkube/containerd/state/x/rootfs",
        "cgroup memory/localkube",
        "path /var/lib/kubelet",
    ]
    assert differences(before, before) == []
