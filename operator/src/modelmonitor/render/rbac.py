"""The drift job's identity: a ServiceAccount allowed to patch only its own monitor's status."""

from __future__ import annotations

from typing import Any

from modelmonitor.naming import DRIFT_JOB_COMPONENT, drift_job_name
from modelmonitor.render.common import metadata
from modelmonitor.spec import Monitor

API_GROUP = "monitoring.mlops.dev"


def render_service_account(monitor: Monitor) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(monitor, drift_job_name(monitor.name), DRIFT_JOB_COMPONENT),
        # The token is how the job patches the status; nothing else mounts it.
        "automountServiceAccountToken": True,
    }


def render_role(monitor: Monitor) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": metadata(monitor, drift_job_name(monitor.name), DRIFT_JOB_COMPONENT),
        "rules": [
            {
                # Server-side apply of status.drift and the DriftDetected condition, on this
                # monitor only (get: the apply reads the object it patches).
                "apiGroups": [API_GROUP],
                "resources": ["modelmonitors/status"],
                "resourceNames": [monitor.name],
                "verbs": ["get", "patch"],
            }
        ],
    }


def render_role_binding(monitor: Monitor) -> dict[str, Any]:
    name = drift_job_name(monitor.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(monitor, name, DRIFT_JOB_COMPONENT),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": monitor.namespace}],
    }
