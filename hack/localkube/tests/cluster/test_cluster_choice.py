"""Which cluster the `kube` fixture takes: kind and loopback clusters as they are, others only
when told to (LOCALKUBE_USE_KUBECONFIG=1), else a control plane of the session's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from localkube.pytest_plugin import USE_KUBECONFIG_ENV, ClusterChoice, choose_cluster


def kubeconfig(folder: Path, context: str, server: str) -> Path:
    """A kubeconfig like kind's or a cloud provider's: one context, current."""
    path = folder / "config"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": {"token": "x"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("context", "server"),
    [
        ("kind-credit-e2e", "https://172.18.0.2:6443"),  # kind, even when not on loopback
        ("localkube", "https://127.0.0.1:39123"),  # `localkube up --no-node`
        ("localkube", "https://10.244.0.1:39123"),  # `localkube up`: on the node's bridge
        ("docker-desktop", "https://127.3.2.1:6443"),  # all of 127.0.0.0/8
        ("minikube-tunnel", "https://localhost:8443"),
        ("k3d", "https://[::1]:6443"),
    ],
)
def test_a_kind_or_loopback_cluster_is_taken_without_opting_in(
    tmp_path: Path, context: str, server: str
) -> None:
    path = kubeconfig(tmp_path, context, server)
    assert choose_cluster({"KUBECONFIG": path.as_posix()}) == ClusterChoice(path)


@pytest.mark.parametrize(
    ("context", "server"),
    [
        ("gke_prod_europe-west1_main", "https://34.77.1.2"),
        ("arn:aws:eks:eu-west-1:1:cluster/prod", "https://ABC.gr7.eu-west-1.eks.amazonaws.com"),
        ("kindly-prod", "https://10.0.0.1:6443"),  # kind clusters' contexts are kind-<name>
    ],
)
def test_another_cluster_needs_the_opt_in_and_the_note_says_how(
    tmp_path: Path, context: str, server: str
) -> None:
    path = kubeconfig(tmp_path, context, server)
    declined = choose_cluster({"KUBECONFIG": str(path)})
    assert declined.kubeconfig is None  # the session's own control plane instead
    assert declined.note is not None
    assert "\n" not in declined.note
    assert f"context {context!r} (server {server})" in declined.note
    assert f"set {USE_KUBECONFIG_ENV}=1" in declined.note

    taken = choose_cluster({"KUBECONFIG": str(path), USE_KUBECONFIG_ENV: "1"})
    assert taken == ClusterChoice(path)


def test_without_kubeconfig_the_session_starts_its_own() -> None:
    assert choose_cluster({}) == ClusterChoice(None)


def test_an_unreadable_kubeconfig_falls_back_and_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.kubeconfig"
    choice = choose_cluster({"KUBECONFIG": str(missing)})
    assert choice.kubeconfig is None
    assert choice.note is not None
    assert "no current context" in choice.note


def test_the_opt_in_alone_means_the_default_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    choice = choose_cluster({USE_KUBECONFIG_ENV: "true"})
    assert choice == ClusterChoice(tmp_path / ".kube" / "config")
