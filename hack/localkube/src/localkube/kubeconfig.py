"""Kubeconfig files: self-contained (certificates embedded), one cluster, one user."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from localkube.pki import KeyPair

CONTEXT = "localkube"


def write_component_kubeconfig(
    path: Path, *, server: str, ca: KeyPair, identity: KeyPair, user: str
) -> Path:
    """A kubeconfig that authenticates with ``identity``, a certificate of the cluster's CA."""
    return write_client_certificate_kubeconfig(
        path,
        server=server,
        ca_pem=ca.certificate.read_bytes(),
        certificate_pem=identity.certificate.read_bytes(),
        key_pem=identity.key.read_bytes(),
        user=user,
    )


def write_client_certificate_kubeconfig(
    path: Path, *, server: str, ca_pem: bytes, certificate_pem: bytes, key_pem: bytes, user: str
) -> Path:
    credentials = {
        "client-certificate-data": _b64(certificate_pem),
        "client-key-data": _b64(key_pem),
    }
    return _write(path, server, ca_pem, user, credentials)


def write_token_kubeconfig(
    path: Path, *, server: str, ca_pem: bytes, token: str, user: str
) -> Path:
    return _write(path, server, ca_pem, user, {"token": token})


def read_server_and_ca(path: Path) -> tuple[str, bytes]:
    """The current context's server URL and CA bundle (to build a token kubeconfig beside it)."""
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in config.get("clusters") or []}
    context = contexts.get(config.get("current-context", ""))
    if context is None:
        raise ValueError(f"{path}: no current-context")
    cluster = clusters[context["cluster"]]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    elif "certificate-authority" in cluster:
        ca = (path.parent / cluster["certificate-authority"]).read_bytes()
    else:
        raise ValueError(f"{path}: cluster {context['cluster']!r} has no certificate authority")
    return str(cluster["server"]), ca


def _write(path: Path, server: str, ca_pem: bytes, user: str, credentials: dict[str, str]) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user}}],
        "current-context": CONTEXT,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
