"""The Kubernetes API as the operator uses it: list, server-side apply, delete, status.

One place for the client and for the error policy (after crate-operator's utils/kubeapi.py):
every API failure becomes an ApiCallError that says whether retrying can help and what to tell
the user in the Degraded condition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import ALL_NS, ApiError, AsyncClient
from lightkube.core.resource import NamespacedResource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import Namespace, Service
from lightkube.types import PatchType

from modelmonitor.manifests import GROUP, KIND, PLURAL, VERSION
from modelmonitor.metrics import API_WRITES

# (apiVersion, kind) -> plural, for every kind of child the operator renders.
CHILD_KINDS: dict[tuple[str, str], str] = {
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("batch/v1", "CronJob"): "cronjobs",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrules",
    ("v1", "ConfigMap"): "configmaps",
}
_RETRYABLE_STATUS = {409, 429, 500, 502, 503, 504}


def _resource(api_version: str, kind: str, plural: str) -> type[NamespacedResource]:
    group, _, version = api_version.rpartition("/")
    resource: type[NamespacedResource] = create_namespaced_resource(group, version, kind, plural)
    return resource


_RESOURCES = {key: _resource(*key, plural) for key, plural in CHILD_KINDS.items()}
MONITOR = _resource(f"{GROUP}/{VERSION}", KIND, PLURAL)
# Read, never written: what decides whether a Prometheus picks up the children (selection.py).
PROMETHEUS = _resource("monitoring.coreos.com/v1", "Prometheus", "prometheuses")
SERVICE_MONITOR = _resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors")
# Pages of the cluster-wide lists: a cluster may hold hundreds of ServiceMonitors.
LIST_CHUNK_SIZE = 100


@dataclass(frozen=True)
class ApiCallError(Exception):
    """An API call failed. `retryable`: a conflict, throttling, a server or network error."""

    reason: str
    message: str
    retryable: bool

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


# The cause the API server gives for a write into a namespace that is being deleted.
NAMESPACE_TERMINATING = "NamespaceTerminating"


def classify(error: Exception, action: str) -> ApiCallError:
    """The error policy: what each failure means for the monitor and whether to retry."""
    if isinstance(error, ApiError):
        code = error.status.code or 0
        detail = error.status.message or str(error)
        causes = error.status.details.causes if error.status.details else None
        if code == 403 and any(cause.reason == NAMESPACE_TERMINATING for cause in causes or []):
            # Not a permission problem: the monitor goes with its namespace; nothing to retry.
            return ApiCallError(NAMESPACE_TERMINATING, f"{action}: {detail}", retryable=False)
        return _by_status(code, f"{action}: {detail}")
    if isinstance(error, httpx2.HTTPStatusError):
        # An answer that is not a Kubernetes Status, e.g. the API server's plain-text
        # "404 page not found" for the resources of a CRD that is not installed.
        code = error.response.status_code
        return _by_status(code, f"{action}: HTTP {code} for {error.request.url.path}")
    if isinstance(error, httpx2.HTTPError | OSError | TimeoutError):
        detail = str(error) or "no response"
        return ApiCallError(
            "Unreachable", f"{action}: {type(error).__name__}: {detail}", retryable=True
        )
    raise error


def _by_status(code: int, message: str) -> ApiCallError:
    if code == 403:
        return ApiCallError("Forbidden", message, retryable=False)
    if code == 404:
        return ApiCallError("MissingAPI", message, retryable=False)
    if code in (400, 422):
        return ApiCallError("Rejected", message, retryable=False)
    return ApiCallError("ApiError", message, retryable=code in _RETRYABLE_STATUS)


def child_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


@dataclass
class KubeApi:
    """A thin async facade over lightkube; counts every write so tests can prove no-op resyncs."""

    client: AsyncClient
    field_manager: str
    writes: Counter[str] = field(default_factory=Counter)

    def _count(self, verb: str) -> None:
        self.writes[verb] += 1
        API_WRITES.labels(verb=verb).inc()

    async def list_children(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[dict[str, Any]]:
        resource = _RESOURCES[(api_version, kind)]
        selector: dict[str, Any] = dict(labels)
        try:
            found = [
                _as_dict(obj, api_version, kind)
                async for obj in self.client.list(resource, namespace=namespace, labels=selector)
            ]
        except (ApiError, httpx2.HTTPError, OSError) as error:
            raise classify(error, f"list {kind}") from error
        return found

    async def apply(self, obj: dict[str, Any]) -> None:
        api_version, kind, name = child_key(obj)
        self._count("apply")
        try:
            await self.client.patch(
                _RESOURCES[(api_version, kind)],
                name,
                obj,
                namespace=obj["metadata"]["namespace"],
                patch_type=PatchType.APPLY,
                field_manager=self.field_manager,
                force=True,
            )
        except (ApiError, httpx2.HTTPError, OSError) as error:
            raise classify(error, f"apply {kind} {name}") from error

    async def delete(self, obj: dict[str, Any]) -> None:
        api_version, kind, name = child_key(obj)
        self._count("delete")
        try:
            await self.client.delete(
                _RESOURCES[(api_version, kind)], name, namespace=obj["metadata"]["namespace"]
            )
        except ApiError as error:
            if error.status.code != 404:
                raise classify(error, f"delete {kind} {name}") from error
        except (httpx2.HTTPError, OSError) as error:
            raise classify(error, f"delete {kind} {name}") from error

    async def list_in_all_namespaces(self, kind: str) -> list[dict[str, Any]]:
        """Every Prometheus or ServiceMonitor (`kind`) in the cluster."""
        resource = PROMETHEUS if kind == "Prometheus" else SERVICE_MONITOR
        try:
            return [
                _as_dict(obj, "monitoring.coreos.com/v1", kind)
                async for obj in self.client.list(
                    resource, namespace=ALL_NS, chunk_size=LIST_CHUNK_SIZE
                )
            ]
        except (ApiError, httpx2.HTTPError, OSError) as error:
            raise classify(error, f"list {kind} in all namespaces") from error

    async def namespace_labels(self) -> dict[str, dict[str, str]]:
        """The labels of every namespace, by name."""
        try:
            return {
                str(ns.metadata.name): dict(ns.metadata.labels or {})
                async for ns in self.client.list(Namespace, chunk_size=LIST_CHUNK_SIZE)
                if ns.metadata is not None
            }
        except (ApiError, httpx2.HTTPError, OSError) as error:
            raise classify(error, "list Namespace") from error

    async def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Service, or None if it does not exist."""
        try:
            obj = await self.client.get(Service, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise classify(error, f"get Service {name}") from error
        except (httpx2.HTTPError, OSError) as error:
            raise classify(error, f"get Service {name}") from error
        return _as_dict(obj, "v1", "Service")

    async def get_monitor(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(MONITOR, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise classify(error, f"get {KIND} {name}") from error
        except (httpx2.HTTPError, OSError) as error:
            raise classify(error, f"get {KIND} {name}") from error
        return _as_dict(obj, f"{GROUP}/{VERSION}", KIND)

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Server-side apply of the operator's own status fields (the drift job owns the rest)."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        self._count("status")
        try:
            await self.client.patch(
                MONITOR.Status,  # type: ignore[attr-defined]
                name,
                body,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager=self.field_manager,
                force=True,
            )
        except (ApiError, httpx2.HTTPError, OSError) as error:
            raise classify(error, f"write {KIND} {name} status") from error


def _as_dict(obj: Any, api_version: str, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    found.setdefault("apiVersion", api_version)
    found.setdefault("kind", kind)
    return found
