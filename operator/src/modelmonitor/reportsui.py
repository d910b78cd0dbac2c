"""Where a monitor's runs are in the Evidently UI: its project's name and id, and the page URLs.

Each monitor's drift runs go to one Evidently project, named `<namespace>/<name>`. Evidently
lets the writer choose a project's id, so the id is derived from that name (a UUID 5): the
operator knows a monitor's project URL without reading the workspace (alert annotations and
dashboard links are rendered before any run), and the URL survives a re-created monitor or a
restored volume. Only the standard library: the drift job and the operator both import it.
"""

from __future__ import annotations

import uuid

# Namespaces the UUID 5 of every project id; changing it would move every project.
PROJECT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "modelmonitors.monitoring.mlops.dev")


def project_name(namespace: str, monitor: str) -> str:
    """`credit/credit-score`: the project of ModelMonitor credit-score in namespace credit."""
    return f"{namespace}/{monitor}"


def project_id(name: str) -> uuid.UUID:
    """The project's id, the same wherever and whenever it is computed."""
    return uuid.uuid5(PROJECT_ID_NAMESPACE, name)


def project_url(base_url: str, project: uuid.UUID) -> str:
    """The project's page in the UI (its dashboard)."""
    return f"{base_url.rstrip('/')}/projects/{project}"


def runs_url(base_url: str, project: uuid.UUID) -> str:
    """The list of the project's runs, newest first."""
    return f"{project_url(base_url, project)}/reports"


def run_url(base_url: str, project: uuid.UUID, run: uuid.UUID) -> str:
    """One run's report."""
    return f"{runs_url(base_url, project)}/{run}"
