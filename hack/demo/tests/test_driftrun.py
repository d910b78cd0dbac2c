"""Resolving a Job's container the way the kubelet would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demo.driftrun import ContainerRun, container_run_from_job, run_as_process


def _job(env: list[dict[str, Any]], args: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "m-drift-manual", "namespace": "risk"},
        "spec": {
            "template": {
                "spec": {
                    "serviceAccountName": "m-drift",
                    "containers": [
                        {"image": "drift:1", "command": ["drift-job"], "args": args, "env": env}
                    ],
                }
            }
        },
    }


def test_env_sources_and_expansions_resolve_like_the_kubelet() -> None:
    secrets = {("db", "dsn"): "postgresql://u@h/db"}
    job = _job(
        [
            {
                "name": "DRIFT_STORE_URL",
                "valueFrom": {"secretKeyRef": {"name": "db", "key": "dsn"}},
            },
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "GREETING", "value": "in $(NS)"},
            {"name": "EMPTY"},
        ],
        ["--namespace", "$(NS)", "--keep", "$(UNDEFINED)", "--cost", "$$5"],
    )
    run = container_run_from_job(job, lambda name, key: secrets[(name, key)])
    assert run.image == "drift:1"
    assert run.argv == (
        "drift-job",
        "--namespace",
        "risk",
        "--keep",
        "$(UNDEFINED)",
        "--cost",
        "$5",
    )
    assert run.env == {
        "DRIFT_STORE_URL": "postgresql://u@h/db",
        "NS": "risk",
        "GREETING": "in risk",
        "EMPTY": "",
    }
    assert run.service_account == "m-drift"
    assert run.namespace == "risk"


def test_an_env_source_it_cannot_resolve_is_an_error_not_a_silent_gap() -> None:
    job = _job([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}], [])
    with pytest.raises(ValueError, match="env X: unsupported source"):
        container_run_from_job(job, lambda name, key: "")


def test_arguments_under_a_mounted_volume_point_at_the_host_directory(tmp_path: Path) -> None:
    job = _job([], ["--report-dir", "/reports", "--log", "/reports/x.log", "--other", "/reportsX"])
    job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "reports", "mountPath": "/reports"}
    ]
    run = container_run_from_job(job, lambda name, key: "")
    assert run.mount_paths == ("/reports",)
    completed = run_as_process(
        ContainerRun(**{**run.__dict__, "argv": ("echo", *run.argv[1:])}),
        tmp_path / "kubeconfig",
        volumes={"/reports": tmp_path / "reports"},
    )
    reports = tmp_path / "reports"
    assert completed.stdout.split() == [
        "--report-dir",
        str(reports),
        "--log",
        f"{reports}/x.log",
        "--other",
        "/reportsX",
    ]
    assert reports.is_dir()
