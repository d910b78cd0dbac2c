"""The pure parts of the pod path: images, kubectl output, and how a drift Job's pod ended."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from demo.cluster import image_values, split_image
from demo.podstack import (
    Images,
    container_port,
    drift_result,
    first_scheduled_job,
    helm_set_json,
    images_from_env,
    job_finished,
    last_run_pod,
    ready_pods,
    terminated_state,
    utc_timestamp,
)

DATA = Path(__file__).parent / "data"
IMAGES = {
    "credit-api": "localhost/credit-api:4ac90f4fd1616090",
    "drift": "localhost/modelmonitor-drift-job:e1b6d9e226310e5f",
    "operator": "localhost/modelmonitor-operator:8c521dad4d696662",
}


def _failed_job_pods() -> dict[str, Any]:
    pods: dict[str, Any] = json.loads((DATA / "failed-drift-job-pods.json").read_text())
    return pods


# --- images ---------------------------------------------------------------------------------


def test_images_come_from_the_file_e2e_images_names(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    path.write_text(json.dumps(IMAGES))
    assert images_from_env({"E2E_IMAGES": str(path)}) == Images(
        credit_api=IMAGES["credit-api"], operator=IMAGES["operator"], drift=IMAGES["drift"]
    )


def test_a_missing_images_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"hack/images/build\.sh.*E2E_IMAGES"):
        images_from_env({"E2E_IMAGES": str(tmp_path / "absent.json")})


def test_an_images_file_without_every_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    path.write_text(json.dumps({"credit-api": IMAGES["credit-api"]}))
    with pytest.raises(ValueError, match="drift, operator"):
        images_from_env({"E2E_IMAGES": str(path)})


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("localhost/credit-api:4ac90f4fd1616090", ("localhost/credit-api", "4ac90f4fd1616090")),
        ("registry.local:5000/team/drift:1.2.3", ("registry.local:5000/team/drift", "1.2.3")),
        ("credit-api:dev", ("credit-api", "dev")),
    ],
)
def test_image_references_split_into_the_charts_repository_and_tag(
    reference: str, expected: tuple[str, str]
) -> None:
    assert split_image(reference) == expected
    assert image_values(reference) == {"repository": expected[0], "tag": expected[1]}


@pytest.mark.parametrize(
    "reference",
    ["credit-api", "registry.local:5000/credit-api", "credit-api@sha256:" + "0" * 64, ":dev"],
)
def test_references_without_a_tag_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="repository:tag"):
        split_image(reference)


# --- kubectl output -------------------------------------------------------------------------


def _pod(name: str, created: str, *, phase: str = "Running", ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
        },
    }


def test_ready_pods_are_the_running_ready_live_ones_newest_first() -> None:
    terminating = _pod("operator-old", "2025-11-20T10:00:00Z")
    terminating["metadata"]["deletionTimestamp"] = "2025-11-20T10:05:00Z"
    pods = {
        "items": [
            terminating,
            _pod("operator-a", "2025-11-20T10:01:00Z"),
            _pod("operator-starting", "2025-11-20T10:06:00Z", ready=False),
            _pod("operator-pending", "2025-11-20T10:06:30Z", phase="Pending", ready=False),
            _pod("operator-b", "2025-11-20T10:05:01Z"),
            {"metadata": {"name": "just-created", "creationTimestamp": "2025-11-20T10:07:00Z"}},
        ]
    }
    assert ready_pods(pods) == ["operator-b", "operator-a"]


def test_container_ports_are_found_by_name() -> None:
    deployment = {
        "metadata": {"name": "monitoring-operator"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "operator",
                            "ports": [
                                {"name": "metrics", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "health", "containerPort": 8081, "protocol": "TCP"},
                            ],
                        }
                    ]
                }
            }
        },
    }
    assert container_port(deployment, "metrics") == 8080
    assert container_port(deployment, "health") == 8081
    with pytest.raises(LookupError, match="monitoring-operator has no port named http"):
        container_port(deployment, "http")


@pytest.mark.parametrize(
    ("conditions", "finished"),
    [
        ([], False),
        # since Kubernetes 1.31 these come first, while the last pod is still being counted
        ([{"type": "SuccessCriteriaMet", "status": "True"}], False),
        ([{"type": "FailureTarget", "status": "True"}], False),
        ([{"type": "Suspended", "status": "False"}], False),
        (
            [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
            True,
        ),
        (
            [{"type": "FailureTarget", "status": "True"}, {"type": "Failed", "status": "True"}],
            True,
        ),
    ],
)
def test_a_job_is_finished_once_complete_or_failed(
    conditions: list[dict[str, str]], finished: bool
) -> None:
    assert job_finished({"status": {"conditions": conditions}}) is finished


def _job(
    name: str, created: str, *, cronjob: str = "credit-score-drift", manual: bool = False
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "creationTimestamp": created,
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob, "controller": True}
        ],
    }
    if manual:
        metadata["annotations"] = {"cronjob.kubernetes.io/instantiate": "manual"}
    return {"metadata": metadata}


def test_the_scheduled_job_is_the_first_one_created_since_the_call() -> None:
    jobs = {
        "items": [
            _job("credit-score-drift-29360540", "2025-11-20T10:20:00Z"),  # before the traffic
            _job("credit-score-drift-now", "2025-11-20T10:21:10Z", manual=True),
            _job("other-drift-29360541", "2025-11-20T10:21:00Z", cronjob="other-drift"),
            _job("credit-score-drift-29360542", "2025-11-20T10:22:00Z"),
            _job("credit-score-drift-29360541", "2025-11-20T10:21:00Z"),
            {"metadata": {"name": "unowned", "creationTimestamp": "2025-11-20T10:21:30Z"}},
        ]
    }
    since = "2025-11-20T10:20:45Z"
    found = first_scheduled_job(jobs, "credit-score-drift", since=since, seen=set())
    assert found is not None
    assert found["metadata"]["name"] == "credit-score-drift-29360541"
    seen = {"credit-score-drift-29360541"}
    found = first_scheduled_job(jobs, "credit-score-drift", since=since, seen=seen)
    assert found is not None
    assert found["metadata"]["name"] == "credit-score-drift-29360542"
    assert (
        first_scheduled_job(jobs, "credit-score-drift", since="2025-11-20T10:22:01Z", seen=seen)
        is None
    )


def test_timestamps_compare_with_the_api_servers() -> None:
    assert utc_timestamp(0) == "1970-01-01T00:00:00Z"
    assert utc_timestamp(1_763_634_120.9) == "2025-11-20T10:22:00Z"
    assert utc_timestamp(1_763_634_120.9) <= "2025-11-20T10:22:00Z" < utc_timestamp(1_763_634_121)


# --- how a drift Job's pod ended ------------------------------------------------------------


def test_the_newest_terminated_pod_of_a_job_gives_the_exit_code() -> None:
    # two attempts (backoffLimit 1): OOM-killed first, then the store was unavailable
    assert last_run_pod(_failed_job_pods(), "drift-job") == ("credit-score-drift-29360542-8kq4w", 4)


def test_a_pod_still_running_has_no_terminated_state() -> None:
    pods = _failed_job_pods()
    running = copy.deepcopy(pods["items"][0])
    running["metadata"]["creationTimestamp"] = "2025-11-20T10:23:00Z"
    running["status"]["phase"] = "Running"
    running["status"]["containerStatuses"][0]["state"] = {
        "running": {"startedAt": "2025-11-20T10:23:01Z"}
    }
    assert terminated_state(running, "drift-job") is None
    assert terminated_state(pods["items"][1], "drift-job") == {
        "containerID": pods["items"][1]["status"]["containerStatuses"][0]["containerID"],
        "exitCode": 137,
        "finishedAt": "2025-11-20T10:22:08Z",
        "reason": "OOMKilled",
        "startedAt": "2025-11-20T10:22:01Z",
    }
    pods["items"].append(running)
    assert last_run_pod(pods, "drift-job") == ("credit-score-drift-29360542-8kq4w", 4)
    assert last_run_pod({"items": [running]}, "drift-job") is None
    assert last_run_pod(pods, "another-container") is None


def test_the_verdict_is_read_from_a_log_with_stderr_lines_around_it() -> None:
    logs = (DATA / "store-unavailable-drift-job.log").read_text()
    result = drift_result(logs)
    assert result["result"] == "Failed"
    assert result["reason"] == "StoreUnavailable"
    assert result["message"].startswith("store unavailable: connection failed")


def test_a_nested_verdict_is_read_whole() -> None:
    verdict = {
        "result": "Completed",
        "datasetDrift": True,
        "rows": {"current": 1800, "reference": 1000},
        "features": [{"name": "age_in_years", "drifted": True}],
    }
    logs = "drift-job: read 1800 rows\n" + json.dumps(verdict, indent=2) + "\n"
    assert drift_result(logs) == verdict


@pytest.mark.parametrize(
    "logs", ["", "drift-job: bad configuration: --window: not a duration\n", "{\n  broken\n}\n"]
)
def test_a_log_without_a_verdict_gives_none(logs: str) -> None:
    assert drift_result(logs) == {}


# --- helm's --set-json ---------------------------------------------------------------------


def test_nested_values_becomehelm_set_json_paths() -> None:
    values = {"kubePrometheusStack": {"ruleLabels": {"release": "kps-old"}}, "n": 2}
    assert helm_set_json(values) == 'kubePrometheusStack.ruleLabels.release="kps-old",n=2'
