"""Links to a monitor's runs in the Evidently UI: where a UI serves them, and nowhere else."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from modelmonitor.render import render_children
from modelmonitor.reportsui import PROJECT_ID_NAMESPACE, project_id, project_name
from modelmonitor.settings import Settings
from modelmonitor.spec import DashboardSpec, Monitor

from .support import CASES, monitor_from

UI = "https://reports.example"
# The alerts about what a run found: the drift, and the model's output, quality and fairness.
REPORT_ALERTS = {
    "ModelDriftDetected",
    "ModelFeatureDriftDetected",
    "ModelPredictionDriftDetected",
    "ModelQualityDegraded",
    "ModelQualityBudgetBurnFast",
    "ModelQualityBudgetBurnSlow",
    "ModelFairnessDisparity",
}


def _full() -> Monitor:
    """The full case (namespace lending, reports on the claim drift-reports), with a dashboard."""
    monitor = monitor_from(CASES / "full-monitor.yaml")
    spec = monitor.spec.model_copy(update={"dashboard": DashboardSpec(enabled=True)})
    return monitor.model_copy(update={"spec": spec})


def _with_ui(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"reports_ui_urls": {"lending": UI}, **changes})


def _children(monitor: Monitor, settings: Settings) -> dict[str, dict[str, Any]]:
    return {child["kind"]: child for child in render_children(monitor, settings)}


def _args(children: dict[str, dict[str, Any]]) -> list[str]:
    pod = children["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args: list[str] = pod["containers"][0]["args"]
    return args


def _alerts(children: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    groups = children["PrometheusRule"]["spec"]["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def _dashboard_links(children: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    (board,) = children["ConfigMap"]["data"].values()
    links: list[dict[str, Any]] = json.loads(board).get("links", [])
    return links


def test_a_monitor_on_the_uis_claim_links_its_project_everywhere(settings: Settings) -> None:
    monitor = _full()
    project = project_id(project_name("lending", "credit-score-v2"))
    children = _children(monitor, _with_ui(settings))

    args = _args(children)
    assert args[args.index("--workspace") + 1] == "/reports/workspace"
    assert args[args.index("--ui-url") + 1] == UI  # the job links each run's page in the status

    alerts = _alerts(children)
    assert set(alerts) >= REPORT_ALERTS  # the full case judges quality and fairness too
    for name, alert in alerts.items():
        expected = (
            {"report_url": f"{UI}/projects/{project}/reports"} if name in REPORT_ALERTS else {}
        )
        assert {k: v for k, v in alert["annotations"].items() if k == "report_url"} == expected

    (link,) = _dashboard_links(children)
    assert link["url"] == f"{UI}/projects/{project}"
    assert (link["type"], link["targetBlank"]) == ("link", True)


@pytest.mark.parametrize(
    "changes",
    [
        {"reports_ui_urls": {}},
        {"reports_ui_urls": {"credit": UI}},  # a UI in another namespace
        {"reports_claim_name": "other-claim"},  # a UI over another claim
    ],
    ids=["no UI", "UI elsewhere", "UI over another claim"],
)
def test_without_a_ui_for_the_monitors_runs_there_is_no_link(
    settings: Settings, changes: dict[str, Any]
) -> None:
    children = _children(_full(), _with_ui(settings, **changes))
    assert "--ui-url" not in _args(children)
    assert "--workspace" in _args(children)  # the runs are still kept, for a UI added later
    assert not any("report_url" in a["annotations"] for a in _alerts(children).values())
    assert _dashboard_links(children) == []


def test_a_monitor_without_reports_has_no_workspace_and_no_link(
    settings: Settings, example_monitor: Monitor
) -> None:
    assert example_monitor.spec.drift.reports is None
    ui = settings.model_copy(update={"reports_ui_urls": {example_monitor.namespace: UI}})
    children = _children(example_monitor, ui)
    assert not {"--workspace", "--ui-url"} & set(_args(children))
    assert not any("report_url" in a["annotations"] for a in _alerts(children).values())


def test_the_ui_urls_come_from_the_environment_and_must_be_web_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MODELMONITOR_REPORTS_UI_URLS", json.dumps({"credit": "http://127.0.0.1:8000"})
    )
    monkeypatch.setenv("MODELMONITOR_REPORTS_CLAIM_NAME", "reports")
    settings = Settings()
    assert settings.reports_ui_urls == {"credit": "http://127.0.0.1:8000"}
    assert settings.reports_claim_name == "reports"
    monkeypatch.setenv("MODELMONITOR_REPORTS_UI_URLS", json.dumps({"credit": "reports.example"}))
    with pytest.raises(ValidationError, match=r"reports_ui_urls\.credit"):
        Settings()


def test_a_project_id_is_a_fixed_function_of_the_monitors_namespace_and_name() -> None:
    """Changing it would strand every project already on a volume and every link: pinned."""
    assert uuid.UUID("1d7ca2cd-21ab-52ca-9e64-700043796008") == PROJECT_ID_NAMESPACE
    name = project_name("credit", "credit-score")
    assert name == "credit/credit-score"
    assert project_id(name) == uuid.UUID("743a224a-9b5f-5879-8c5d-5eb545f66770")
