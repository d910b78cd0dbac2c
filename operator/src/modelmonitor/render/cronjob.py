"""The drift CronJob (`<name>-drift`): runs the `drift-job` CLI (docs/contracts.md) on schedule."""

from __future__ import annotations

import json
from typing import Any

from modelmonitor.naming import DRIFT_JOB_COMPONENT, drift_job_name
from modelmonitor.render.common import metadata
from modelmonitor.render.reportlinks import ReportLinks, report_links
from modelmonitor.schedule import longest_interval_seconds
from modelmonitor.settings import Settings
from modelmonitor.spec import DriftSpec, Monitor

REPORT_DIR = "/reports"
# The Evidently workspace on the report volume, which the chart's Evidently UI serves.
WORKSPACE_DIR = f"{REPORT_DIR}/workspace"
# The image's non-root user (distroless convention); fsGroup lets it write to the report volume.
RUN_AS_USER = 65532
# A run that cannot start within this many seconds of its slot is skipped, not queued.
MAX_STARTING_DEADLINE_SECONDS = 300


def drift_job_args(monitor: Monitor, links: ReportLinks | None = None) -> list[str]:
    """The `drift-job` arguments for this monitor, in the order docs/contracts.md lists them.

    `links`: the Evidently UI that serves the monitor's runs, if one does.
    """
    drift = monitor.spec.drift
    model = monitor.spec.model
    args = ["--model", model.name]
    if model.version is not None:
        args += ["--model-version", model.version]
    args += [
        "--window",
        drift.window,
        "--min-rows",
        str(drift.min_rows),
        "--max-rows",
        str(drift.max_rows),
        "--method",
        drift.method,
    ]
    if drift.threshold is not None:
        args += ["--threshold", f"{drift.threshold:g}"]
    args += _per_column_args(drift)
    args += ["--drift-share", f"{drift.drift_share:g}"]
    if drift.columns is not None:
        if drift.columns.numerical:
            args += ["--numerical-columns", ",".join(drift.columns.numerical)]
        if drift.columns.categorical:
            args += ["--categorical-columns", ",".join(drift.columns.categorical)]
    if drift.reports is not None:
        args += ["--report-dir", REPORT_DIR, "--workspace", WORKSPACE_DIR]
        if links is not None:
            args += ["--ui-url", links.base_url]
        args += ["--keep-reports", str(drift.reports.keep)]
    args += _judgement_args(monitor)
    args += ["--monitor", monitor.name, "--namespace", monitor.namespace, "--output", "json"]
    return args


def _judgement_args(monitor: Monitor) -> list[str]:
    """The model's outputs, quality and fairness: what the job judges besides the drift."""
    spec = monitor.spec
    args: list[str] = []
    if spec.model.positive_class is not None:
        args += ["--positive-class", spec.model.positive_class]
    for decision, share in sorted(spec.model.reference_decision_shares.items()):
        args += ["--reference-decision-share", f"{decision}={share:g}"]
    if spec.quality is not None:
        args += [
            "--quality",
            "--quality-window",
            spec.quality.window,
            "--label-delay",
            spec.quality.label_delay,
            "--min-labelled",
            str(spec.quality.min_labelled),
        ]
    if spec.fairness is not None:
        # The spec's own shape, as JSON: the job parses it with the same field names.
        document = spec.fairness.model_dump(mode="json", by_alias=True)
        args += ["--fairness", json.dumps(document, sort_keys=True, separators=(",", ":"))]
    return args


def _per_column_args(drift: DriftSpec) -> list[str]:
    args: list[str] = []
    for override in drift.per_column:
        if override.method is not None:
            args += ["--column-method", f"{override.name}={override.method}"]
    for override in drift.per_column:
        if override.threshold is not None:
            args += ["--column-threshold", f"{override.name}={override.threshold:g}"]
    return args


def _container(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    drift = monitor.spec.drift
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - the container's scratch space
    if drift.reports is not None:
        mounts.append({"name": "reports", "mountPath": REPORT_DIR})
    secret = monitor.spec.store.secret_ref
    return {
        "name": "drift-job",
        "image": settings.drift_image,
        "imagePullPolicy": settings.drift_image_pull_policy,
        "command": ["drift-job"],
        "args": drift_job_args(monitor, report_links(monitor, settings)),
        "env": [
            {
                "name": "DRIFT_STORE_URL",
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            },
            # Libraries that cache under $HOME write to the emptyDir, not the read-only root.
            {"name": "HOME", "value": "/tmp"},  # noqa: S108
        ],
        "resources": {
            "requests": dict(sorted(drift.resources.requests.items())),
            "limits": dict(sorted(drift.resources.limits.items())),
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _volumes(monitor: Monitor) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    reports = monitor.spec.drift.reports
    if reports is not None:
        volumes.append(
            {
                "name": "reports",
                "persistentVolumeClaim": {"claimName": reports.persistent_volume_claim},
            }
        )
    return volumes


def render_cronjob(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    drift = monitor.spec.drift
    name = drift_job_name(monitor.name)
    pod_spec = {
        "serviceAccountName": name,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(monitor, settings)],
        "volumes": _volumes(monitor),
    }
    job_labels = metadata(monitor, name, DRIFT_JOB_COMPONENT)["labels"]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(monitor, name, DRIFT_JOB_COMPONENT),
        "spec": {
            "schedule": drift.schedule,
            "suspend": drift.suspend,
            # Two runs at once would race on the same status; the next slot is soon enough.
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": min(
                MAX_STARTING_DEADLINE_SECONDS, longest_interval_seconds(drift.schedule)
            ),
            "successfulJobsHistoryLimit": 3,
            # Failed Jobs are kept so `kubectl logs` and the DriftJobFailed alert can see them.
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "backoffLimit": drift.backoff_limit,
                    "activeDeadlineSeconds": drift.active_deadline_seconds,
                    "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
                },
            },
        },
    }
