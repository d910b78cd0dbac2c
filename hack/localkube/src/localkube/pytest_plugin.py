"""pytest fixtures: ``kube`` (one control plane per test session) and ``kube_namespace``.

Registered through the ``pytest11`` entry point, so any test in the workspace can ask for them.
Nothing is built or started unless a test asks for ``kube``.

Which cluster: a local control plane started for the session, unless
``LOCALKUBE_USE_KUBECONFIG=1``, in which case the cluster of ``$KUBECONFIG`` (or
~/.kube/config) is used. A KUBECONFIG alone is not enough, so that a test run never creates and
deletes namespaces in whatever cluster a shell happens to point at.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from localkube.build import (
    CONTROL_PLANE,
    HELM_CLI,
    KUBECTL,
    Binary,
    ensure_binaries,
    report_to_stderr,
)
from localkube.cluster import start_cluster, stop_cluster
from localkube.errors import BuildError, LocalkubeError, MissingToolError
from localkube.kube import Kube

USE_KUBECONFIG_ENV = "LOCALKUBE_USE_KUBECONFIG"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def use_existing_cluster() -> bool:
    return os.environ.get(USE_KUBECONFIG_ENV, "").strip().lower() in {"1", "true", "yes"}


def existing_kubeconfig() -> Path:
    configured = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = Path(configured).expanduser() if configured else Path.home() / ".kube" / "config"
    if not path.is_file():
        raise LocalkubeError(
            f"{USE_KUBECONFIG_ENV}=1 but the kubeconfig {path} does not exist; point KUBECONFIG "
            "at your cluster's kubeconfig, or unset the variable to use a local control plane"
        )
    return path


def unavailable(reason: str) -> NoReturn:
    """In CI a missing tool fails the test; elsewhere it skips it, saying what is missing."""
    message = f"localkube cannot provide what this test needs: {reason}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def _live_output(config: pytest.Config) -> Iterator[None]:
    """Let build progress reach the terminal while pytest captures output."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


def binaries_for_fixture(name: str) -> tuple[Binary, ...]:
    """Which binaries a fixture of this plugin needs (none for fixtures of others)."""
    if name == "kube":
        return (KUBECTL,) if use_existing_cluster() else CONTROL_PLANE
    return {
        "localkube_binaries": CONTROL_PLANE,
        "helm_binary": (HELM_CLI,),
        "kubectl_binary": (KUBECTL,),
    }.get(name, ())


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find in the cache) the binaries the collected tests need, before any runs.

    A cold build takes longer than a test's timeout, so it must not happen inside one. A
    failure here is not fatal: the fixtures meet it again and skip or fail their tests.
    """
    if session.config.option.collectonly:
        return
    needed = {
        binary
        for item in session.items
        for fixture in getattr(item, "fixturenames", ())
        for binary in binaries_for_fixture(fixture)
    }
    if not needed:
        return
    with _live_output(session.config), contextlib.suppress(MissingToolError, BuildError):
        ensure_binaries(sorted(needed, key=lambda b: b.name), report_to_stderr)


def _binaries(request: pytest.FixtureRequest, binaries: tuple[Binary, ...]) -> dict[str, Path]:
    try:
        with _live_output(request.config):
            return ensure_binaries(binaries, report_to_stderr)
    except (MissingToolError, BuildError) as error:
        unavailable(str(error))


@pytest.fixture(scope="session")
def localkube_binaries(request: pytest.FixtureRequest) -> dict[str, Path]:
    """The control plane's binaries by name (etcd, kube-apiserver, kube-controller-manager,
    kubectl), for tests that start clusters of their own."""
    return _binaries(request, CONTROL_PLANE)


@pytest.fixture(scope="session")
def helm_binary(request: pytest.FixtureRequest) -> Path:
    """The pinned helm (for pyhelm3: ``Client(executable=str(helm_binary))``)."""
    return _binaries(request, (HELM_CLI,))["helm"]


@pytest.fixture(scope="session")
def kubectl_binary(request: pytest.FixtureRequest) -> Path:
    """The pinned kubectl."""
    return _binaries(request, (KUBECTL,))["kubectl"]


@pytest.fixture(scope="session")
def kube(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Kube]:
    """A cluster with the prometheus-operator CRDs installed, for the whole test session."""
    kubectl = _binaries(request, binaries_for_fixture("kube"))["kubectl"]
    state = None
    try:
        with _live_output(request.config):
            if use_existing_cluster():
                kubeconfig = existing_kubeconfig()
            else:
                state = start_cluster(tmp_path_factory.mktemp("localkube"), die_with_parent=True)
                atexit.register(stop_cluster, state)
                kubeconfig = state.kubeconfig
            cluster = Kube(kubeconfig, kubectl, local=state is not None)
            cluster.install_prometheus_operator_crds()
    except (MissingToolError, BuildError) as error:
        if state is not None:
            stop_cluster(state)
        unavailable(str(error))
    except BaseException:
        if state is not None:
            stop_cluster(state)
        raise
    try:
        yield cluster
    finally:
        cluster.close()
        if state is not None:
            stop_cluster(state, keep_data=False)


@pytest.fixture
def kube_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test (its name), deleted afterwards with all it holds."""
    name = namespace_name(request.node.name)
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise


def namespace_name(test_name: str) -> str:
    """A valid, unique namespace name (RFC 1123 label) derived from the test's name."""
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:48].rstrip("-")
    return f"{stem or 'test'}-{secrets.token_hex(3)}"
