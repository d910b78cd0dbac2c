"""Deterministic child names and the labels every child carries.

Children are named `<monitor>-<suffix>`. A monitor name may be up to 253 characters but most
kinds we create need a DNS label (63), and a CronJob name 52 (its controller appends an
11-character timestamp suffix to the Job name, and Job names become pod labels). Long names are
truncated and given a short hash of the full name, so two long monitors never collide and the
same monitor always maps to the same child.
"""

from __future__ import annotations

import hashlib

MANAGED_BY = "modelmonitor"
PART_OF = "model-monitoring"
DNS_LABEL_MAX = 63
CRONJOB_NAME_MAX = 52
_HASH_LENGTH = 8
# `app.kubernetes.io/component` of each kind of child.
DRIFT_JOB_COMPONENT = "drift-job"
ALERTING_COMPONENT = "alerting"
DASHBOARD_COMPONENT = "dashboard"


def child_name(monitor: str, suffix: str, limit: int = DNS_LABEL_MAX) -> str:
    """`<monitor>-<suffix>`, truncated with a hash of the untruncated name to fit `limit`."""
    full = f"{monitor}-{suffix}"
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_LENGTH]
    keep = limit - len(suffix) - len(digest) - 2
    head = monitor[:keep].rstrip("-.")
    return f"{head}-{digest}-{suffix}"


def drift_job_name(monitor: str) -> str:
    """The drift CronJob, and its ServiceAccount, Role and RoleBinding."""
    return child_name(monitor, "drift", CRONJOB_NAME_MAX)


def rules_name(monitor: str) -> str:
    """The PrometheusRule."""
    return child_name(monitor, "rules")


def dashboard_name(monitor: str) -> str:
    """The Grafana dashboard ConfigMap (and its JSON file's name in it)."""
    return child_name(monitor, "dashboard")


def label_value(text: str) -> str:
    """A label value (at most 63 characters), truncated with a hash when longer."""
    if len(text) <= DNS_LABEL_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{text[: DNS_LABEL_MAX - _HASH_LENGTH - 1].rstrip('-._')}-{digest}"


def selector_labels(monitor: str) -> dict[str, str]:
    """The labels that find every child of one monitor (used to prune)."""
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/instance": label_value(monitor),
    }


def child_labels(monitor: str, model: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "modelmonitor",
        **selector_labels(monitor),
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/component": component,
        "monitoring.mlops.dev/model": label_value(model),
    }
