"""pytest fixtures: ``kube`` (one control plane per test session) and ``kube_namespace``.

Registered through the ``pytest11`` entry point, so any test in the workspace can ask for them.
Nothing is built or started unless a test asks for ``kube``.

Which cluster (``choose_cluster``): the tests install charts and create and delete namespaces,
so they only go to a cluster that is safe to treat that way.

- ``$KUBECONFIG`` whose current context is a kind cluster (context ``kind-*``) or whose server
  is on loopback (127.0.0.0/8, localhost, ::1: kind, `localkube up`) is used as it is;
- any other cluster only with ``LOCALKUBE_USE_KUBECONFIG=1`` as well (which also accepts
  ~/.kube/config when KUBECONFIG is unset);
- otherwise the session starts a control plane of its own.

A KUBECONFIG at another cluster without the opt-in falls back to the session's own control plane
(with one line saying which context was found and how to opt in) rather than failing: the
default has always been the local control plane, which needs nothing from the shell, so a
`make test` in a shell that points at a production cluster still runs every test, and touches
nothing there.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from localkube.addresses import NODE_ADDRESS
from localkube.build import (
    CONTROL_PLANE,
    HELM_CLI,
    KUBECTL,
    NODE,
    Binary,
    ensure_binaries,
    report_to_stderr,
)
from localkube.cluster import start_cluster, stop_cluster
from localkube.errors import BuildError, LocalkubeError, MissingToolError
from localkube.kube import Kube, kube_for, local_node_runtime
from localkube.kubeconfig import CONTEXT as LOCALKUBE_CONTEXT
from localkube.node.hoststate import HostState, differences, read_host_state
from localkube.node.lifecycle import NodeLayout
from localkube.node.preflight import check_host
from localkube.state import ClusterState
from localkube.versions import WrapperModule

USE_KUBECONFIG_ENV = "LOCALKUBE_USE_KUBECONFIG"
TRUE = {"1", "true", "yes"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE


@dataclass(frozen=True)
class ClusterChoice:
    """``kubeconfig``: the existing cluster's, or None for a control plane of the session's own.
    ``note``: one line to tell the person running the tests, if any."""

    kubeconfig: Path | None
    note: str | None = None


def choose_cluster(environ: Mapping[str, str]) -> ClusterChoice:
    """Which cluster the ``kube`` fixture uses under this environment (see the module doc)."""
    opted_in = environ.get(USE_KUBECONFIG_ENV, "").strip().lower() in TRUE
    configured = environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if not configured and not opted_in:
        return ClusterChoice(None)
    path = Path(configured).expanduser() if configured else Path.home() / ".kube" / "config"
    if opted_in:
        return ClusterChoice(path)  # the fixture says so if it does not exist
    context, server = current_context(path)
    if context is not None and is_disposable(context, server):
        return ClusterChoice(path)
    if context is None:
        return ClusterChoice(
            None,
            f"KUBECONFIG={path} has no current context ({server}): using a local control plane",
        )
    return ClusterChoice(
        None,
        f"KUBECONFIG={path} has context {context!r} (server {server}), which is neither kind "
        f"nor on loopback: using a local control plane instead; to run the tests there, set "
        f"{USE_KUBECONFIG_ENV}=1",
    )


def current_context(path: Path) -> tuple[str | None, str]:
    """The current context's name and its cluster's server; (None, reason) if unreadable."""
    try:
        config: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        return None, f"unreadable: {error}"
    name = config.get("current-context") or None
    contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []}
    cluster = clusters.get(contexts.get(name, {}).get("cluster"), {})
    return name, str(cluster.get("server", "unknown"))


def by_localkube(kubeconfig: Path) -> bool:
    """A `localkube up` cluster: like the session's own, it runs no pods (tests ask ``local``)."""
    return current_context(kubeconfig)[0] == LOCALKUBE_CONTEXT


def is_disposable(context: str, server: str) -> bool:
    """A kind cluster, any API server on this machine's loopback, or the local node's."""
    if context.startswith("kind-"):
        return True
    host = urlsplit(server).hostname or ""
    if host in {"localhost", NODE_ADDRESS}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cluster_choice(config: pytest.Config) -> ClusterChoice:
    """The choice, made once per session (so its note is printed once)."""
    if CHOICE_KEY not in config.stash:
        config.stash[CHOICE_KEY] = choose_cluster(os.environ)
    return config.stash[CHOICE_KEY]


def existing_kubeconfig(path: Path) -> Path:
    if not path.is_file():
        raise LocalkubeError(
            f"{USE_KUBECONFIG_ENV}=1 but the kubeconfig {path} does not exist; point "
            "KUBECONFIG at your cluster's kubeconfig, or unset the variable to use a local "
            "control plane"
        )
    return path


CHOICE_KEY = pytest.StashKey[ClusterChoice]()
# Whether some collected test needs pods (marker `node`): then the session's cluster gets a node.
NODE_KEY = pytest.StashKey[bool]()
# Why the session's cluster has no node although a test wanted one (not root, no containerd...).
NO_NODE_KEY = pytest.StashKey[str]()
# A build that failed once fails the same way again: it is attempted once per session.
FAILURES_KEY = pytest.StashKey[dict[WrapperModule, LocalkubeError]]()


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


def binaries_for_fixture(
    name: str, choice: ClusterChoice, *, node: bool = False
) -> tuple[Binary, ...]:
    """Which binaries a fixture of this plugin needs (none for fixtures of others).

    ``node``: the session's own cluster gets a node (some test is marked `node`).
    """
    if name == "kube":
        if choice.kubeconfig is not None:
            return (KUBECTL,)
        return (*CONTROL_PLANE, *NODE) if node else CONTROL_PLANE
    return {
        "localkube_binaries": CONTROL_PLANE,
        "node_binaries": (*CONTROL_PLANE, *NODE),
        "helm_binary": (HELM_CLI,),
        "kubectl_binary": (KUBECTL,),
    }.get(name, ())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Tests that bring up a node of their own (`own_node`) run first: the machine has room for
    one node, and the session's cluster holds it from the first test that asks for `kube`.

    Last of the hooks, so that what `-m` and `-k` deselect asks for no node."""
    own = [item for item in items if item.get_closest_marker("own_node")]
    if own:
        items[:] = own + [item for item in items if not item.get_closest_marker("own_node")]
    config.stash[NODE_KEY] = any(item.get_closest_marker("node") for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find in the cache) the binaries the collected tests need, before any runs.

    A cold build takes longer than a test's timeout, so it must not happen inside one. A
    failure here is not fatal: it is remembered, and the fixtures that need those binaries
    skip or fail their tests with it, without building again.
    """
    if session.config.option.collectonly:
        return
    choice = _cluster_choice(session.config)
    node = session.config.stash.get(NODE_KEY, False)
    needed = {
        binary
        for item in session.items
        for fixture in getattr(item, "fixturenames", ())
        for binary in binaries_for_fixture(fixture, choice, node=node)
    }
    if not needed:
        return
    with _live_output(session.config):
        for group in _by_module(sorted(needed, key=lambda b: b.name)).values():
            with contextlib.suppress(MissingToolError, BuildError):
                _ensure_once(session.config, group)  # each module tried, whatever the others do


def _ensure_once(config: pytest.Config, binaries: Sequence[Binary]) -> dict[str, Path]:
    """ensure_binaries, one module at a time, never building again what failed this session."""
    failures = config.stash.setdefault(FAILURES_KEY, {})
    found: dict[str, Path] = {}
    for module, group in _by_module(binaries).items():
        if module in failures:
            raise failures[module]
        try:
            found |= ensure_binaries(group, report_to_stderr)
        except (MissingToolError, BuildError) as error:
            failures[module] = error
            raise
    return found


def _by_module(binaries: Sequence[Binary]) -> dict[WrapperModule, list[Binary]]:
    grouped: dict[WrapperModule, list[Binary]] = {}
    for binary in binaries:
        grouped.setdefault(binary.module, []).append(binary)
    return grouped


def _binaries(request: pytest.FixtureRequest, binaries: tuple[Binary, ...]) -> dict[str, Path]:
    try:
        with _live_output(request.config):
            return _ensure_once(request.config, binaries)
    except (MissingToolError, BuildError) as error:
        failure = str(error)
    unavailable(failure)  # outside the except: a skip or CI failure chained to nothing


@pytest.fixture(scope="session")
def localkube_binaries(request: pytest.FixtureRequest) -> dict[str, Path]:
    """The control plane's binaries by name (etcd, kube-apiserver, kube-controller-manager,
    kubectl), for tests that start clusters of their own."""
    return _binaries(request, CONTROL_PLANE)


@pytest.fixture(scope="session")
def node_binaries(request: pytest.FixtureRequest) -> dict[str, Path]:
    """The control plane's and the node's binaries by name (kubelet, kube-proxy, ...)."""
    return _binaries(request, (*CONTROL_PLANE, *NODE))


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
    """A cluster with the prometheus-operator CRDs installed, for the whole test session.

    The session's own cluster gets a node when a collected test is marked `node`; stopping it
    then checks that the host is as it was before (an error at teardown says what is left).
    """
    choice = _cluster_choice(request.config)
    node = choice.kubeconfig is None and request.config.stash.get(NODE_KEY, False)
    if node:
        try:
            check_host()
        except MissingToolError as error:
            request.config.stash[NO_NODE_KEY] = str(error)
            node = False
    kubectl = _binaries(request, binaries_for_fixture("kube", choice, node=node))["kubectl"]
    state = None
    try:
        with _live_output(request.config):
            if choice.note:
                report_to_stderr(choice.note)
            if choice.kubeconfig is not None:
                kubeconfig = existing_kubeconfig(choice.kubeconfig)
                cluster = Kube(
                    kubeconfig,
                    kubectl,
                    local=by_localkube(kubeconfig),
                    node_runtime=local_node_runtime(kubeconfig),
                )
            else:
                state = start_cluster(
                    tmp_path_factory.mktemp("localkube"), die_with_parent=True, node=node
                )
                atexit.register(stop_cluster, state)
                cluster = kube_for(state, kubectl)
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
            _stop_and_check_host(state)


def _stop_and_check_host(state: ClusterState) -> None:
    before = HostState.load(NodeLayout(state.directory / "node").host_before)
    stop_cluster(state, keep_data=False)
    if before is not None:
        left = differences(before, read_host_state())
        assert not left, f"the local node left these on the host: {left}"


@pytest.fixture(autouse=True)
def _pods_run_where_needed(request: pytest.FixtureRequest) -> None:
    """A test marked `node` needs pods to run: skip it (fail it in CI) on a cluster without."""
    if request.node.get_closest_marker("node") is None:
        return
    cluster: Kube = request.getfixturevalue("kube")
    if not cluster.runs_pods:
        reason = request.config.stash.get(NO_NODE_KEY, "the cluster has no Ready node")
        unavailable(f"this test needs pods to run: {reason}")


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
