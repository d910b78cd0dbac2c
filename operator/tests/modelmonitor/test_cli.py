"""`modelmonitor render` and `check`, as a user runs them: a process, its output, its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .support import EXAMPLE, invalid_manifest


def modelmonitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmonitor.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "MODELMONITOR_DRIFT_IMAGE": "registry.example/drift:2"},
    )


def test_render_prints_every_child() -> None:
    result = modelmonitor("render", "-f", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(result.stdout)]
    assert kinds == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "CronJob",
        "PrometheusRule",
        "ConfigMap",
    ]
    assert "registry.example/drift:2" in result.stdout


@pytest.mark.prometheus
def test_check_accepts_the_example() -> None:
    result = modelmonitor("check", "-f", str(EXAMPLE))
    assert result.returncode == 0, result.stderr


def test_bad_spec_names_the_field_without_a_traceback(tmp_path: Path) -> None:
    case = {"set": {"spec": {"slo": {"latency": {"thresholdSeconds": 0.4}}}}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(invalid_manifest(case)))
    for command in ("render", "check"):
        result = modelmonitor(command, "-f", str(bad))
        assert result.returncode == 1
        assert "spec.slo.latency.thresholdSeconds" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: Deployment\napiVersion: apps/v1\n", "expected apiVersion"),
        ("spec: [unclosed\n", "not valid YAML"),
    ],
)
def test_wrong_files_are_explained(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(content)
    result = modelmonitor("render", "-f", str(path))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_explained(tmp_path: Path) -> None:
    result = modelmonitor("render", "-f", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr
