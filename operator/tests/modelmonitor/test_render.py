"""Renderers: golden files, schema validity, and the properties every child must have."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from modelmonitor.check import check_children, crds_by_kind, validate_kubernetes
from modelmonitor.manifests import dump_manifests
from modelmonitor.naming import child_name
from modelmonitor.render import render_children
from modelmonitor.render.cronjob import drift_job_args
from modelmonitor.render.dashboard import dashboard_uid
from modelmonitor.settings import Settings
from modelmonitor.spec import Monitor

from .support import CASES, EXAMPLE, monitor_from, require_tool

GOLDEN = Path(__file__).parent / "golden"
# `UPDATE_GOLDEN=1 pytest ...` rewrites the golden files after an intended change.
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
INPUTS = {
    "example": EXAMPLE,
    "full": CASES / "full-monitor.yaml",
    "test-sized": CASES / "test-sized-monitor.yaml",
}


@pytest.mark.parametrize("case", sorted(INPUTS))
def test_children_match_golden_file(case: str, settings: Settings) -> None:
    rendered = dump_manifests(render_children(monitor_from(INPUTS[case]), settings))
    golden = GOLDEN / f"{case}.yaml"
    if UPDATE:
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"re-run with UPDATE_GOLDEN=1 if {golden} is outdated"


def _children(settings: Settings) -> list[tuple[Monitor, dict[str, Any]]]:
    return [
        (monitor, child)
        for path in INPUTS.values()
        for monitor in [monitor_from(path)]
        for child in render_children(monitor, settings)
    ]


def test_every_child_has_name_namespace_and_labels(settings: Settings) -> None:
    for monitor, child in _children(settings):
        metadata = child["metadata"]
        assert metadata["name"]
        assert metadata["namespace"] == monitor.namespace
        labels = metadata["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "modelmonitor"
        assert labels["app.kubernetes.io/instance"] == monitor.name
        for key in ("name", "part-of", "component"):
            assert labels[f"app.kubernetes.io/{key}"]


def test_core_children_pass_kubernetes_schemas(settings: Settings) -> None:
    for _, child in _children(settings):
        if child["kind"] != "PrometheusRule":
            assert validate_kubernetes(child) == [], child["kind"]


def test_schema_validation_catches_a_broken_child(
    settings: Settings, example_monitor: Monitor
) -> None:
    cronjob = next(c for c in render_children(example_monitor, settings) if c["kind"] == "CronJob")
    cronjob["spec"]["concurrencyPolicy"] = 7
    assert validate_kubernetes(cronjob) != []


@pytest.mark.prometheus
def test_prometheus_rules_pass_operator_schema_and_promtool(settings: Settings) -> None:
    require_tool("promtool")
    crds = crds_by_kind(_prometheus_operator_crds())
    assert "monitoring.coreos.com/PrometheusRule" in crds
    rules = [child for _, child in _children(settings) if child["kind"] == "PrometheusRule"]
    assert check_children(rules, crds) == []


def _prometheus_operator_crds() -> list[Path]:
    try:
        from localkube.crds import prometheus_operator_crd_paths  # noqa: PLC0415
    except ImportError:
        pytest.fail("localkube (hack/localkube) is not installed: run `make setup`")
    try:
        return list(prometheus_operator_crd_paths())
    except Exception as error:  # the Go module cache may need a download first
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"prometheus-operator CRDs not available: {error}")


def test_drift_job_command_follows_the_contract(settings: Settings) -> None:
    monitor = monitor_from(CASES / "full-monitor.yaml")
    assert drift_job_args(monitor) == [
        "--model", "credit-score", "--model-version", "2",
        "--window", "6h", "--min-rows", "500", "--max-rows", "20000",
        "--method", "psi", "--threshold", "0.2",
        "--column-method", "age_in_years=wasserstein", "--column-method", "purpose=chisquare",
        "--column-threshold", "age_in_years=0.15",
        "--drift-share", "0.3",
        "--numerical-columns", "age_in_years,credit_amount,duration_in_month",
        "--categorical-columns", "purpose,housing",
        "--report-dir", "/reports", "--workspace", "/reports/workspace", "--keep-reports", "5",
        "--positive-class", "bad",
        "--reference-decision-share", "bad=0.25", "--reference-decision-share", "good=0.75",
        "--quality", "--quality-window", "7d", "--label-delay", "2d", "--min-labelled", "500",
        "--fairness", FULL_FAIRNESS,
        "--monitor", "credit-score-v2", "--namespace", "lending", "--output", "json",
    ]  # fmt: skip


# The spec's fairness, as the job's --fairness flag carries it (every field, camelCase).
FULL_FAIRNESS = json.dumps(
    {
        "attributes": [
            {
                "bins": [{"below": 25.0, "name": "young"}, {"below": None, "name": "adult"}],
                "feature": "age_in_years",
                "groups": [],
                "reference": "adult",
            },
            {
                "bins": [],
                "feature": "personal_status_and_sex",
                "groups": [
                    {"name": "female", "values": ["female : divorced/separated/married"]},
                    {
                        "name": "male",
                        "values": [
                            "male : single",
                            "male : married/widowed",
                            "male : divorced/separated",
                        ],
                    },
                ],
                "reference": "male",
            },
        ],
        "favourableDecision": "good",
        "maxDisparateImpactRatio": 1.1,
        "minDisparateImpactRatio": 0.9,
        "minRowsPerGroup": 50,
    },
    sort_keys=True,
    separators=(",", ":"),
)


def test_the_fairness_flag_is_what_the_drift_job_parses(settings: Settings) -> None:
    from drift_job.fairness_config import FairnessConfig  # noqa: PLC0415 - the job's own model

    spec = monitor_from(CASES / "full-monitor.yaml").spec.fairness
    assert spec is not None
    parsed = FairnessConfig.model_validate_json(FULL_FAIRNESS)
    assert parsed.model_dump(by_alias=True) == spec.model_dump(by_alias=True)


def test_cronjob_runs_restricted_and_takes_the_store_url_from_the_secret(
    settings: Settings,
) -> None:
    monitor = monitor_from(CASES / "full-monitor.yaml")
    cronjob = next(c for c in render_children(monitor, settings) if c["kind"] == "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 300
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "reports", "persistentVolumeClaim": {"claimName": "drift-reports"}} in pod[
        "volumes"
    ]
    store = container["env"][0]
    assert store == {
        "name": "DRIFT_STORE_URL",
        "valueFrom": {"secretKeyRef": {"name": "lending-db", "key": "url"}},
    }
    assert container["image"] == settings.drift_image


def test_role_allows_only_this_monitors_status(
    settings: Settings, example_monitor: Monitor
) -> None:
    role = next(c for c in render_children(example_monitor, settings) if c["kind"] == "Role")
    assert role["rules"] == [
        {
            "apiGroups": ["monitoring.mlops.dev"],
            "resources": ["modelmonitors/status"],
            "resourceNames": ["credit-score"],
            "verbs": ["get", "patch"],
        }
    ]


def test_dashboard_is_optional_and_labelled_from_settings(example_monitor: Monitor) -> None:
    custom = Settings(dashboard_label={"grafana": "yes"}, rule_labels={"prometheus": "main"})
    children = render_children(example_monitor, custom)
    dashboard = next(c for c in children if c["kind"] == "ConfigMap")
    rule = next(c for c in children if c["kind"] == "PrometheusRule")
    assert dashboard["metadata"]["labels"]["grafana"] == "yes"
    assert rule["metadata"]["labels"]["prometheus"] == "main"
    disabled = monitor_from(CASES / "full-monitor.yaml")
    assert "ConfigMap" not in {c["kind"] for c in render_children(disabled, custom)}


def test_dashboard_uid_is_stable_and_distinct(settings: Settings, example_monitor: Monitor) -> None:
    board = json.loads(
        next(c for c in render_children(example_monitor, settings) if c["kind"] == "ConfigMap")[
            "data"
        ]["credit-score-dashboard.json"]
    )
    assert board["uid"] == dashboard_uid(example_monitor)
    assert len(board["uid"]) <= 40
    other = example_monitor.model_copy(update={"namespace": "other"})
    assert dashboard_uid(other) != dashboard_uid(example_monitor)
    titles = {panel.get("title") for panel in board["panels"]}
    for wanted in ("Request rate", "Latency", "Error budget left", "Per-feature drift score"):
        assert wanted in titles


def test_long_names_are_truncated_with_a_hash() -> None:
    long_name = "a" * 70
    first = child_name(long_name, "drift", 52)
    assert len(first) == 52
    assert first.endswith("-drift")
    assert first == child_name(long_name, "drift", 52)
    assert first != child_name("a" * 69 + "b", "drift", 52)
    assert child_name("short", "drift", 52) == "short-drift"


def test_rendering_is_deterministic(settings: Settings, example_monitor: Monitor) -> None:
    assert render_children(example_monitor, settings) == render_children(example_monitor, settings)
