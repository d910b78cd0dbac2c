"""`Kube`: what a test (or a script) needs to talk to a cluster, local or existing."""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from functools import cached_property
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localkube.crds import REQUIRED_CRDS, crd_name, prometheus_operator_crd_paths
from localkube.errors import LocalkubeError
from localkube.images import ImageArchive
from localkube.kubeconfig import read_server_and_ca, write_token_kubeconfig
from localkube.node import containerd
from localkube.node.lifecycle import NodeLayout
from localkube.state import ClusterState
from localkube.waiting import wait_for

# Longer than a whole test session, so a component started early keeps its identity.
DEFAULT_TOKEN_SECONDS = 3 * 3600
CRD_ESTABLISHED_TIMEOUT = 120.0


class KubectlError(subprocess.CalledProcessError):
    """A kubectl command failed; unlike CalledProcessError, its message carries stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}"


class Kube:
    """A cluster reached through an admin kubeconfig.

    ``kubeconfig``: the admin kubeconfig. ``server``: the API server URL. ``api_client``: a
    ``kubernetes.client.ApiClient`` for it. ``kubectl(*args)``: the pinned kubectl against it.
    ``service_account_kubeconfig(namespace, name)``: a kubeconfig that authenticates as that
    ServiceAccount (a TokenRequest token), to run a component with exactly its RBAC.
    ``local``: a cluster localkube started. ``runs_pods``: it has a Ready node (a local node,
    kind). ``import_images(archives)``: into the local node's containerd.
    """

    def __init__(
        self,
        kubeconfig: Path,
        kubectl: Path,
        *,
        local: bool,
        node_runtime: containerd.ContainerdLayout | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        self.local = local
        self.node_runtime = node_runtime
        self.server, self._ca = read_server_and_ca(kubeconfig)
        self._scratch = tempfile.TemporaryDirectory(prefix="localkube-tokens-")

    @cached_property
    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; a failure raises KubectlError if ``check``."""
        command = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        completed = subprocess.run(
            command, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and completed.returncode != 0:
            raise KubectlError(completed.returncode, command, completed.stdout, completed.stderr)
        return completed

    def service_account_kubeconfig(
        self, namespace: str, name: str, *, expiration_seconds: int = DEFAULT_TOKEN_SECONDS
    ) -> Path:
        """A kubeconfig whose user is the ServiceAccount ``namespace/name`` (which must exist)."""
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
        )
        try:
            response = client.CoreV1Api(self.api_client).create_namespaced_service_account_token(
                name, namespace, request
            )
        except ApiException as error:
            raise LocalkubeError(
                f"TokenRequest for ServiceAccount {namespace}/{name} failed: "
                f"{error.status} {error.reason}: {error.body}"
            ) from error
        safe = re.sub(r"[^a-zA-Z0-9.-]", "-", f"{namespace}-{name}")
        return write_token_kubeconfig(
            Path(self._scratch.name) / f"{safe}.kubeconfig",
            server=self.server,
            ca_pem=self._ca,
            token=response.status.token,
            user=f"system:serviceaccount:{namespace}:{name}",
        )

    @cached_property
    def runs_pods(self) -> bool:
        """Whether some node is Ready, so that pods run (not on a control plane alone)."""
        nodes = client.CoreV1Api(self.api_client).list_node().items
        return any(
            condition.type == "Ready" and condition.status == "True"
            for node in nodes
            for condition in (node.status.conditions or [])
        )

    def import_images(self, images: list[ImageArchive]) -> list[str]:
        """Put images into the local node's containerd (imagePullPolicy IfNotPresent or Never
        then finds them); the references imported. Other clusters load images their own way
        (kind: `kind load image-archive`, docs/kind.md)."""
        if self.node_runtime is None:
            raise LocalkubeError(
                "this cluster has no local node to import images into: load them the "
                "cluster's own way (kind: `kind load image-archive <file>`)"
            )
        return containerd.import_images(self.node_runtime, images)

    def install_prometheus_operator_crds(self) -> list[str]:
        """Apply the pinned prometheus-operator CRDs the cluster lacks; wait until established.

        CRDs that already exist (a cluster with kube-prometheus-stack) are left as they are.
        Returns the names of the CRDs applied.
        """
        existing = set(self.kubectl("get", "crd", "-o", "name").stdout.split())
        missing = [
            path
            for path in prometheus_operator_crd_paths()
            if f"customresourcedefinition.apiextensions.k8s.io/{crd_name(path)}" not in existing
        ]
        if missing:
            # Server-side apply: these CRDs are too large for the last-applied annotation.
            files = [argument for p in missing for argument in ("-f", str(p))]
            self.kubectl("apply", "--server-side", "--force-conflicts", *files)
        for name in REQUIRED_CRDS:
            wait_for(
                functools.partial(self._crd_established, name),
                timeout=CRD_ESTABLISHED_TIMEOUT,
                what=f"CRD {name} to be established",
            )
        return [crd_name(p) for p in missing]

    def _crd_established(self, name: str) -> bool:
        # `kubectl wait` fails instead of waiting while a new CRD has no conditions yet.
        crd = client.ApiextensionsV1Api(self.api_client).read_custom_resource_definition(name)
        conditions = (crd.status.conditions if crd.status else None) or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    def close(self) -> None:
        if "api_client" in self.__dict__:
            self.api_client.close()
        self._scratch.cleanup()


def local_node_runtime(kubeconfig: Path) -> containerd.ContainerdLayout | None:
    """The containerd of the local node of the cluster whose admin kubeconfig this is, if any.

    `localkube up` (and the fixtures) write the admin kubeconfig into the cluster's folder,
    beside ``cluster.json``.
    """
    state = ClusterState.load(kubeconfig.parent)
    if state is None or not state.node:
        return None
    return NodeLayout(state.directory / "node").containerd


def kube_for(state: ClusterState, kubectl: Path) -> Kube:
    """A Kube for a cluster localkube started (its node's containerd included, if it has one)."""
    return Kube(
        state.kubeconfig, kubectl, local=True, node_runtime=local_node_runtime(state.kubeconfig)
    )
