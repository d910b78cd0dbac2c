"""Writes the drift status into the ModelMonitor through the Kubernetes API.

Server-side apply on the `status` subresource with field manager `drift-job`: the job owns
`status.drift` and the `DriftDetected` condition, the operator owns the rest. The job's
ServiceAccount may only get and patch its own monitor's status. lightkube keeps the import
light for a process that writes once; the configuration is in-cluster when running in a pod,
otherwise KUBECONFIG (or ~/.kube/config).

lightkube raises its own ApiError for an answer that refuses the request (403, 404, ...) and
the errors of its HTTP transport, httpx2 (not httpx), when there is no answer at all: both end
in a StatusWriteError, the one line the job prints.
"""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import ApiError, Client, KubeConfig
from lightkube.core.exceptions import ConfigError as KubeConfigError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from drift_job.status import Outcome, build_status_apply

FIELD_MANAGER = "drift-job"
ModelMonitor = create_namespaced_resource(
    "monitoring.mlops.dev", "v1alpha1", "ModelMonitor", "modelmonitors"
)


class StatusWriteError(RuntimeError):
    """The status could not be written (no access, no such monitor, API unreachable)."""


def make_client() -> Client:
    try:
        return Client(config=KubeConfig.from_env(), field_manager=FIELD_MANAGER)
    except KubeConfigError as error:
        raise StatusWriteError(f"no Kubernetes configuration: {error}") from error


def write_status(
    name: str, namespace: str, outcome: Outcome, client: Client | None = None
) -> dict[str, Any]:
    """Apply this outcome to the monitor's status; returns the body that was applied."""
    client = client or make_client()
    where = f"modelmonitor {namespace}/{name}"
    try:
        # The Role grants get on the status subresource only, which returns the whole object.
        current = client.get(ModelMonitor.Status, name, namespace=namespace)
        previous = current.get("status") or {}
        body = build_status_apply(name, namespace, outcome, previous)
        client.patch(
            ModelMonitor.Status,
            name,
            body,
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=FIELD_MANAGER,
            force=True,
        )
    except ApiError as error:
        raise StatusWriteError(
            f"the Kubernetes API refused to write the status of {where}: "
            f"{error.status.code} {error.status.message}"
        ) from error
    except httpx2.HTTPError as error:
        detail = str(error) or type(error).__name__
        raise StatusWriteError(
            f"cannot reach the Kubernetes API to write the status of {where}: {detail}"
        ) from error
    return body
