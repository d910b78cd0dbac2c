"""Metadata shared by every rendered child."""

from __future__ import annotations

from typing import Any

from modelmonitor.naming import child_labels
from modelmonitor.spec import Monitor


def metadata(
    monitor: Monitor, name: str, component: str, extra_labels: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = child_labels(monitor.name, monitor.spec.model.name, component)
    return {
        "name": name,
        "namespace": monitor.namespace,
        "labels": {**(extra_labels or {}), **labels},
    }
