"""Pure renderers: a frozen Monitor (and settings) in, plain Kubernetes objects out.

No I/O, no clock, no environment, no kopf or Kubernetes client (an import contract test checks
it), so `modelmonitor render` and the golden tests see exactly what the operator applies.
"""

from __future__ import annotations

from typing import Any

from modelmonitor.render.cronjob import render_cronjob
from modelmonitor.render.dashboard import render_dashboard
from modelmonitor.render.prometheusrule import render_prometheus_rule
from modelmonitor.render.rbac import render_role, render_role_binding, render_service_account
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor


def render_children(monitor: Monitor, settings: Settings) -> list[dict[str, Any]]:
    """Every child the monitor should have, in the order they are applied (identity first)."""
    children = [
        render_service_account(monitor),
        render_role(monitor),
        render_role_binding(monitor),
        render_cronjob(monitor, settings),
        render_prometheus_rule(monitor, settings),
    ]
    if monitor.spec.dashboard.enabled:
        children.append(render_dashboard(monitor, settings))
    return children
