"""The dashboard's building blocks: a Prometheus query, a time series, a stat panel."""

from __future__ import annotations

from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import dashboard as gm

DATASOURCE = gm.DataSourceRef(type_val="prometheus", uid="${datasource}")
REFS = "ABCDEFGH"


def query(expr: str, legend: str = "__auto", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def series(title: str, unit: str, *queries: prometheus.Dataquery) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(12)
    for one in queries:
        panel = panel.with_target(one)
    return panel


def stat_panel(title: str, unit: str, one: prometheus.Dataquery) -> stat.Panel:
    return (
        stat.Panel().title(title).unit(unit).datasource(DATASOURCE).height(6).span(8)
    ).with_target(one)
