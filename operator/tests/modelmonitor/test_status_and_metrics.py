"""Pure parts of the reconcile loop: change detection, conditions, the drift metrics."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import Status, StatusCause, StatusDetails
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelmonitor.judgement_metrics import JudgementCollector
from modelmonitor.kube import ApiCallError, classify
from modelmonitor.metrics import DriftCollector
from modelmonitor.reconcile import is_subset
from modelmonitor.status import Condition, build_status, conditions_for, status_unchanged

LIVE_CRONJOB: dict[str, Any] = {
    "metadata": {"name": "m-drift", "uid": "1", "resourceVersion": "7", "labels": {"a": "b"}},
    "spec": {"schedule": "*/15 * * * *", "suspend": False, "jobTemplate": {"x": [1, {"y": 2}]}},
}


def test_rendered_fields_already_live_need_no_write() -> None:
    desired = {"metadata": {"name": "m-drift"}, "spec": {"schedule": "*/15 * * * *"}}
    assert is_subset(desired, LIVE_CRONJOB)


def test_a_changed_or_missing_field_needs_a_write() -> None:
    assert not is_subset({"spec": {"schedule": "0 * * * *"}}, LIVE_CRONJOB)
    assert not is_subset({"spec": {"startingDeadlineSeconds": 300}}, LIVE_CRONJOB)
    assert not is_subset({"spec": {"jobTemplate": {"x": [1]}}}, LIVE_CRONJOB)
    assert not is_subset({"spec": {}}, None)


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    first = build_status(1, conditions_for(None, [], None), [], {}, "2026-01-01T00:00:00Z")
    same = build_status(1, conditions_for(None, [], None), [], first, "2026-01-02T00:00:00Z")
    assert same == first
    assert status_unchanged(same, first)
    broken = build_status(
        1, conditions_for(None, ["Forbidden: list ConfigMap"], "Forbidden"), [], first, "later"
    )
    ready = next(c for c in broken["conditions"] if c["type"] == "Ready")
    assert ready == {
        "type": "Ready",
        "status": "False",
        "reason": "Forbidden",
        "message": "Forbidden: list ConfigMap",
        "lastTransitionTime": "later",
        "observedGeneration": 1,
    }
    assert not status_unchanged(broken, first)


def test_pickup_conditions_are_unknown_then_flip_with_their_own_transition_time() -> None:
    unknown = Condition("RulesSelected", None, "NoPrometheus", "no Prometheus object")
    first = build_status(1, [*conditions_for(None, [], None), unknown], [], {}, "t0")
    rules = first["conditions"][-1]
    assert (rules["status"], rules["lastTransitionTime"]) == ("Unknown", "t0")
    reworded = Condition("RulesSelected", None, "NoPrometheus", "still no Prometheus object")
    second = build_status(1, [*conditions_for(None, [], None), reworded], [], first, "t1")
    assert not status_unchanged(second, first)  # the message is news, the transition is not
    assert second["conditions"][-1]["lastTransitionTime"] == "t0"
    selected = Condition("RulesSelected", True, "Selected", "monitoring/kps selects it")
    third = build_status(1, [*conditions_for(None, [], None), selected], [], second, "t2")
    assert third["conditions"][-1]["lastTransitionTime"] == "t2"
    assert third["conditions"][0]["lastTransitionTime"] == "t0"  # Ready did not move


def test_the_drift_jobs_condition_does_not_count_as_a_change() -> None:
    mine = build_status(2, conditions_for(None, [], None), [], {}, "t")
    live = {
        **mine,
        "conditions": [*mine["conditions"], {"type": "DriftDetected", "status": "True"}],
    }
    assert status_unchanged(mine, live)


def test_invalid_spec_names_the_field_in_every_condition() -> None:
    conditions = conditions_for("spec.drift.window: not a duration", [], None)
    assert {c.type: c.status for c in conditions} == {
        "Ready": False,
        "InvalidSpec": True,
        "Degraded": False,
    }
    assert conditions[1].message == "spec.drift.window: not a duration"


@pytest.mark.parametrize(
    ("code", "reason", "retryable"),
    [
        (403, "Forbidden", False),
        (404, "MissingAPI", False),
        (422, "Rejected", False),
        (409, "ApiError", True),
        (429, "ApiError", True),
        (503, "ApiError", True),
    ],
)
def test_api_errors_are_classified_once(code: int, reason: str, retryable: bool) -> None:
    error = ApiError(status=Status(code=code, message="the server says no"))
    problem = classify(error, "list PrometheusRule")
    assert (problem.reason, problem.retryable) == (reason, retryable)
    assert problem.message == "list PrometheusRule: the server says no"


def test_the_plain_404_of_a_missing_crd_is_a_missing_api() -> None:
    # What lightkube raises when the API server answers "404 page not found" (no Status body).
    url = "https://127.0.0.1:6443/apis/monitoring.coreos.com/v1/prometheuses"
    request = httpx2.Request("GET", url)
    response = httpx2.Response(404, text="404 page not found\n", request=request)
    error = httpx2.HTTPStatusError("Client error", request=request, response=response)
    problem = classify(error, "list Prometheus")
    assert (problem.reason, problem.retryable) == ("MissingAPI", False)
    assert problem.message == (
        "list Prometheus: HTTP 404 for /apis/monitoring.coreos.com/v1/prometheuses"
    )


def test_a_write_into_a_namespace_being_deleted_is_not_a_permission_problem() -> None:
    # What the API server's NamespaceLifecycle admission answers, cause and all.
    message = "unable to create new content in namespace x because it is being terminated"
    error = ApiError(
        status=Status(
            code=403,
            reason="Forbidden",
            message=message,
            details=StatusDetails(
                causes=[StatusCause(reason="NamespaceTerminating", field="metadata.namespace")]
            ),
        )
    )
    problem = classify(error, "apply CronJob m-drift")
    assert (problem.reason, problem.retryable) == ("NamespaceTerminating", False)


def test_network_errors_are_retryable() -> None:
    problem = classify(ConnectionRefusedError("refused"), "list CronJob")
    assert isinstance(problem, ApiCallError)
    assert problem.retryable


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_drift_metrics_follow_the_status_and_forget_deleted_monitors() -> None:
    collector = DriftCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    drift = {
        "result": "Completed",
        "lastRunTime": "2026-01-01T00:00:00Z",
        "lastSuccessfulRunTime": "2026-01-01T00:00:00Z",
        "datasetDrift": True,
        "driftShare": 0.25,
        "features": [
            {"name": "age", "stattest": "K-S p_value", "score": 0.001, "drifted": True},
            {"name": "purpose", "stattest": "chi-square p_value", "score": 0.4, "drifted": False},
        ],
    }
    collector.observe("risk", "credit-score", "credit-score", drift)
    samples = _samples(registry)
    monitor = {"model": "credit-score", "monitor": "credit-score", "monitor_namespace": "risk"}

    def at(name: str, **extra: str) -> float:
        return samples[(name, tuple(sorted({**monitor, **extra}.items())))]

    assert at("modelmonitor_drift_share") == 0.25
    assert at("modelmonitor_drift_detected") == 1.0
    assert at("modelmonitor_feature_drift_detected", feature="age") == 1
    assert at("modelmonitor_feature_drift_detected", feature="purpose") == 0
    assert at("modelmonitor_feature_drift_score", feature="age", stattest="K-S p_value") == 0.001
    assert at("modelmonitor_drift_last_success_timestamp_seconds") == 1767225600
    assert at("modelmonitor_drift_run_result", result="Failed") == 0
    assert at("modelmonitor_drift_run_result", result="Completed") == 1
    collector.forget("risk", "credit-score")
    assert "credit-score" not in generate_latest(registry).decode()


def test_metrics_pass_promtool_check_metrics(promtool: str) -> None:
    import subprocess  # noqa: PLC0415

    collector = DriftCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe("risk", "m", "credit-score", {"driftShare": 0.5, "datasetDrift": False})
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


JUDGED_STATUS = {
    "drift": {
        "result": "Completed",
        "prediction": {
            "drifted": True,
            "columns": [
                {"name": "prediction_score", "stattest": "K-S p_value", "score": 0.001,
                 "drifted": True},
                {"name": "prediction_decision", "stattest": "chi-square p_value",
                 "score": 0.3, "drifted": False},
            ],
        },
        "referenceDecisionShares": {"approve": 0.6, "decline": 0.4},
    },
    "quality": {
        "result": "Completed",
        "rows": {"predictions": 900, "labelled": 300, "compared": 300, "sampled": False},
        "labelCoverage": 0.333333,
        "rocAuc": 0.81,
        "f1": 0.6,
        "brierScore": 0.17,
    },
    "fairness": {
        "verdict": "Disparity",
        "attributes": [
            {
                "name": "region",
                "reference": "north",
                "disparity": True,
                "groups": [
                    {"name": "north", "rows": 500, "selectionRate": 0.6,
                     "disparateImpactRatio": 1.0},
                    {"name": "south", "rows": 400, "selectionRate": 0.3,
                     "disparateImpactRatio": 0.5, "truePositiveRateDifference": -0.2},
                ],
            }
        ],
    },
}  # fmt: skip


def test_judgement_metrics_follow_the_status_and_forget_deleted_monitors() -> None:
    collector = JudgementCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe("risk", "loans", "loan-model", JUDGED_STATUS)
    samples = _samples(registry)
    monitor = {"model": "loan-model", "monitor": "loans", "monitor_namespace": "risk"}

    def at(name: str, **extra: str) -> float:
        return samples[(name, tuple(sorted({**monitor, **extra}.items())))]

    score = "modelmonitor_prediction_drift_score"
    assert at(score, column="prediction_score", stattest="K-S p_value") == 0.001
    assert at("modelmonitor_prediction_drift_detected", column="prediction_score") == 1
    assert at("modelmonitor_prediction_drift_detected", column="prediction_decision") == 0
    assert at("modelmonitor_reference_decision_share", decision="decline") == 0.4
    assert at("modelmonitor_quality_roc_auc") == 0.81
    assert at("modelmonitor_quality_f1_score") == 0.6
    assert at("modelmonitor_quality_brier_score") == 0.17
    assert at("modelmonitor_quality_label_coverage_ratio") == 0.333333
    assert at("modelmonitor_quality_labelled_rows") == 300
    assert at("modelmonitor_quality_run_result", result="Completed") == 1
    assert at("modelmonitor_quality_run_result", result="InsufficientLabels") == 0
    assert ("modelmonitor_quality_precision", tuple(sorted(monitor.items()))) not in samples
    group = {"attribute": "region", "group": "south", "reference": "north"}
    assert at("modelmonitor_fairness_disparate_impact_ratio", **group) == 0.5
    assert at("modelmonitor_fairness_selection_rate", **group) == 0.3
    assert at("modelmonitor_fairness_true_positive_rate_difference", **group) == -0.2
    assert at("modelmonitor_fairness_group_rows", attribute="region", group="north") == 500
    assert at("modelmonitor_fairness_disparity", attribute="region") == 1
    collector.forget("risk", "loans")
    assert "loans" not in generate_latest(registry).decode()


def test_judgement_metrics_pass_promtool_check_metrics(promtool: str) -> None:
    import subprocess  # noqa: PLC0415

    collector = JudgementCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe("risk", "loans", "loan-model", JUDGED_STATUS)
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
