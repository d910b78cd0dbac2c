"""The Grafana dashboard ConfigMap (`<name>-dashboard`), built with grafana-foundation-sdk.

The Grafana sidecar of kube-prometheus-stack loads every ConfigMap carrying the dashboard label
(a setting). The uid is derived from the monitor's namespace and name, so links to the dashboard
survive re-creation and two monitors never share one.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import heatmap
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as gm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from modelmonitor.durations import parse_duration
from modelmonitor.naming import DASHBOARD_COMPONENT, dashboard_name
from modelmonitor.render import slo
from modelmonitor.render.common import metadata
from modelmonitor.render.judgement_panels import judgement_panels
from modelmonitor.render.panels import DATASOURCE, REFS
from modelmonitor.render.panels import query as _query
from modelmonitor.render.panels import series as _series
from modelmonitor.render.panels import stat_panel as _stat
from modelmonitor.render.promql import Matcher, Selector, number
from modelmonitor.render.reportlinks import ReportLinks, report_links
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor

RATE = "$__rate_interval"
# Grafana dashboard uids are at most 40 characters.
UID_LENGTH = 40


def dashboard_uid(monitor: Monitor) -> str:
    digest = hashlib.sha256(f"{monitor.namespace}/{monitor.name}".encode()).hexdigest()
    return f"modelmonitor-{digest}"[:UID_LENGTH]


class _Queries:
    """The PromQL behind each panel."""

    def __init__(self, monitor: Monitor) -> None:
        self.metrics = slo.app_metrics(monitor)
        self.traffic = slo.user_traffic(monitor)
        self.app_all = slo.app_selector(monitor)
        self.model = self.app_all.with_(Matcher("model", monitor.spec.model.name))
        self.own = slo.own_selector(monitor)

    def requests(self, *extra: Matcher) -> str:
        return f"rate({self.metrics.requests}{self.traffic.with_(*extra)}[{RATE}])"

    def latency_quantile(self, quantile: float) -> str:
        buckets = f"{self.metrics.request_duration}_bucket{self.traffic}"
        return f"histogram_quantile({quantile}, sum by (le) (rate({buckets}[{RATE}])))"

    def predictions(self, selector: Selector) -> str:
        return f"rate({self.metrics.predictions}{selector}[{RATE}])"


def _panels(monitor: Monitor, q: _Queries) -> list[Any]:
    slo_window = monitor.spec.slo.window
    burn_window = slo.current_burn_window(parse_duration(slo_window))
    budget_burn = [
        _query(
            f"{slo.error_ratio_rate(burn_window)}{slo.sli_selector(monitor, objective)}"
            f" / {number(objective.budget)}",
            objective.name,
            ref,
        )
        for ref, objective in zip(REFS, slo.objectives(monitor), strict=False)
    ]
    return [
        gd.Row("Service"),
        _series("Request rate", "reqps", _query(f"sum by (route) ({q.requests()})", "{{route}}")),
        _series(
            "Error ratio (5xx)",
            "percentunit",
            _query(
                f"(sum({q.requests(slo.SERVER_ERRORS)}) or vector(0)) / sum({q.requests()})",
                "errors",
            ),
        ),
        _series(
            "Latency",
            "s",
            *(
                _query(q.latency_quantile(quantile), f"p{round(quantile * 100)}", ref)
                for ref, quantile in (("A", 0.5), ("B", 0.95), ("C", 0.99))
            ),
        ),
        _series(
            "Records dropped by the prediction log",
            "ops",
            _query(
                f"sum by (reason) (rate({q.metrics.records_dropped}{q.app_all}[{RATE}]))",
                "{{reason}}",
            ),
        ),
        _series(
            "Prediction log: records waiting for the store",
            "short",
            _query(
                f"sum by (instance) ({q.metrics.queue_depth}{q.app_all})",
                "{{instance}}",
            ),
        ),
        _series(
            "Prediction store up (1) or unavailable (0)",
            "none",
            _query(f"min by (instance) ({q.metrics.store_up}{q.app_all})", "{{instance}}"),
        )
        .min(0)
        .max(1),
        gd.Row(f"SLOs ({slo_window})"),
        _series(
            "Error budget left",
            "percentunit",
            _query(f"{slo.BUDGET_REMAINING}{slo.sli_selector(monitor)}", "{{slo}}"),
        )
        .min(-1)
        .max(1),
        _series("Burn rate (1 = budget lasts exactly the period)", "none", *budget_burn),
        gd.Row("Model"),
        _series(
            "Decisions",
            "ops",
            _query(f"sum by (decision) ({q.predictions(q.model)})", "{{decision}}"),
        ),
        _series(
            "Share of each decision, and its reference share",
            "percentunit",
            _query(
                f"sum by (decision) ({q.predictions(q.model)})"
                f" / ignoring (decision) group_left sum({q.predictions(q.model)})",
                "{{decision}}",
            ),
            _query(
                f"max by (decision) (modelmonitor_reference_decision_share{q.own})",
                "{{decision}} (reference)",
                "B",
            ),
        )
        .min(0)
        .max(1),
        heatmap.Panel()
        .title("Score distribution")
        .datasource(DATASOURCE)
        .height(8)
        .span(12)
        .with_target(
            _query(
                f"sum by (le) (increase({q.metrics.prediction_score}_bucket{q.model}[{RATE}]))",
                "{{le}}",
            ).format(PromQueryFormat.HEATMAP)
        ),
        gd.Row("Drift"),
        _series(
            "Drift share (drifted / columns)",
            "percentunit",
            _query(f"max(modelmonitor_drift_share{q.own})", "drift share"),
        )
        .min(0)
        .max(1),
        _series(
            "Per-feature drift score",
            "none",
            _query(
                f"max by (feature, stattest) (modelmonitor_feature_drift_score{q.own})",
                "{{feature}} ({{stattest}})",
            ),
        ),
        _stat(
            "Last drift run",
            "s",
            _query(f"time() - max(modelmonitor_drift_last_run_timestamp_seconds{q.own})", "age"),
        ),
        _stat(
            "Last successful drift run",
            "s",
            _query(
                f"time() - max(modelmonitor_drift_last_success_timestamp_seconds{q.own})", "age"
            ),
        ),
        _stat(
            "Drift detected",
            "bool_yes_no",
            _query(f"max(modelmonitor_drift_detected{q.own})", "drift"),
        ),
        _series(
            "Drift of the model's output (score and decisions) against the reference",
            "none",
            _query(
                f"max by (column, stattest) (modelmonitor_prediction_drift_score{q.own})",
                "{{column}} ({{stattest}})",
            ),
        ),
        *judgement_panels(monitor),
    ]


def render_dashboard_json(monitor: Monitor, links: ReportLinks | None = None) -> dict[str, Any]:
    """The dashboard; `links`: the Evidently UI serving the monitor's runs, linked at the top."""
    title = monitor.spec.dashboard.title or f"Model {monitor.spec.model.name} ({monitor.namespace})"
    builder = (
        gd.Dashboard(title)
        .uid(dashboard_uid(monitor))
        .tags(["modelmonitor", monitor.spec.model.name])
        .time("now-6h", "now")
        .refresh("1m")
        .readonly()
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    if links is not None:
        builder = builder.link(
            gd.DashboardLink("Drift reports (Evidently)")
            .type(gm.DashboardLinkType.LINK)
            .url(links.project_url)
            .tooltip("Every drift run of this monitor in the Evidently UI")
            .icon("doc")
            .target_blank(True)
        )
    for panel in _panels(monitor, _Queries(monitor)):
        builder = (
            builder.with_row(panel) if isinstance(panel, gd.Row) else builder.with_panel(panel)
        )
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    return encoded


def render_dashboard(monitor: Monitor, settings: Settings) -> dict[str, Any]:
    board = render_dashboard_json(monitor, report_links(monitor, settings))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            monitor, dashboard_name(monitor.name), DASHBOARD_COMPONENT, settings.dashboard_label
        ),
        # Compact JSON: fewer bytes in etcd, in every watch event and in the operator's memory.
        "data": {
            f"{dashboard_name(monitor.name)}.json": json.dumps(
                board, sort_keys=True, separators=(",", ":")
            )
        },
    }
