"""The control plane's certificates: a tiny CA, the API server's serving certificate, client
certificates for the admin and the controller manager, and the service-account key pair."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localkube.addresses import KUBERNETES_SERVICE_IP, NODE_ADDRESS, SERVICE_CLUSTER_IP_RANGE

__all__ = [
    "API_SERVER_DNS_NAMES",
    "KUBERNETES_SERVICE_IP",
    "SERVICE_CLUSTER_IP_RANGE",
    "ControlPlanePKI",
    "KeyPair",
    "create_pki",
]

VALIDITY = datetime.timedelta(days=365)
API_SERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class ControlPlanePKI:
    ca: KeyPair
    api_server: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    service_account_key: Path
    service_account_public_key: Path
    # The node's identities: each component as the user its bootstrap RBAC role is bound to.
    scheduler: KeyPair
    kubelet: KeyPair
    kube_proxy: KeyPair
    # The API server's identity towards the kubelet (logs, exec, port-forward).
    api_server_kubelet_client: KeyPair


@dataclass(frozen=True)
class _Issuer:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def create_pki(directory: Path, node_name: str) -> ControlPlanePKI:
    """Write every key and certificate the cluster needs into ``directory``.

    ``node_name``: the name the kubelet registers under; the Node authorizer only lets
    ``system:node:<node_name>`` act for that node.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = _name("localkube-ca")
    ca_cert = _sign(
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ),
        ca_key,
    )
    ca = _write(directory, "ca", ca_cert, ca_key)

    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in API_SERVER_DNS_NAMES]
    sans += [
        x509.IPAddress(ipaddress.ip_address(ip))
        for ip in ("127.0.0.1", KUBERNETES_SERVICE_IP, NODE_ADDRESS)
    ]
    issuer = _Issuer(ca_cert, ca_key)
    api_server = _leaf(
        directory, "apiserver", common_name="kube-apiserver", sans=sans, server=True, issuer=issuer
    )
    admin = _leaf(
        directory,
        "admin",
        common_name="localkube-admin",
        organization="system:masters",
        issuer=issuer,
    )
    controller_manager = _leaf(
        directory, "controller-manager", common_name="system:kube-controller-manager", issuer=issuer
    )
    scheduler = _leaf(directory, "scheduler", common_name="system:kube-scheduler", issuer=issuer)
    kubelet = _leaf(
        directory,
        "kubelet",
        common_name=f"system:node:{node_name}",
        organization="system:nodes",
        issuer=issuer,
    )
    kube_proxy = _leaf(directory, "kube-proxy", common_name="system:kube-proxy", issuer=issuer)
    api_server_kubelet_client = _leaf(
        directory,
        "apiserver-kubelet-client",
        common_name="kube-apiserver-kubelet-client",
        organization="system:masters",
        issuer=issuer,
    )

    service_account_key = _new_key()
    private_path = directory / "service-account.key"
    public_path = directory / "service-account.pub"
    private_path.write_bytes(_private_pem(service_account_key))
    private_path.chmod(0o600)
    public_path.write_bytes(
        service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ControlPlanePKI(
        ca,
        api_server,
        admin,
        controller_manager,
        private_path,
        public_path,
        scheduler=scheduler,
        kubelet=kubelet,
        kube_proxy=kube_proxy,
        api_server_kubelet_client=api_server_kubelet_client,
    )


def _leaf(
    directory: Path,
    stem: str,
    *,
    common_name: str,
    organization: str | None = None,
    issuer: _Issuer,
    sans: list[x509.GeneralName] | None = None,
    server: bool = False,
) -> KeyPair:
    key = _new_key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name, organization), issuer.certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _write(directory, stem, _sign(builder, issuer.key), key)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(
    directory: Path, stem: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> KeyPair:
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_private_pem(key))
    key_path.chmod(0o600)
    return KeyPair(cert_path, key_path)
