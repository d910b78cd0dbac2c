"""`modelmonitor render` and `check`, as a user runs them: a process, its output, its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .support import EXAMPLE, invalid_manifest


def modelmonitor(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelmonitor.cli", *args],
        input=stdin,
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


def test_render_reads_stdin_and_places_monitors_in_the_namespace_given() -> None:
    result = modelmonitor("render", "-f", "-", "-n", "risk", stdin=EXAMPLE.read_text())
    assert result.returncode == 0, result.stderr
    children = list(yaml.safe_load_all(result.stdout))
    assert {child["metadata"]["namespace"] for child in children} == {"risk"}
    rule = next(child for child in children if child["kind"] == "PrometheusRule")
    assert 'namespace="risk"' in rule["spec"]["groups"][0]["rules"][0]["expr"]


def test_render_refuses_a_namespace_other_than_the_monitors_own(tmp_path: Path) -> None:
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["namespace"] = "credit"
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = modelmonitor("render", "-f", str(path), "-n", "risk")
    assert result.returncode == 1
    assert "metadata.namespace" in result.stderr
    assert "'credit'" in result.stderr
    assert "Traceback" not in result.stderr
    assert modelmonitor("render", "-f", str(path), "-n", "credit").returncode == 0


def test_rendered_yaml_writes_shared_objects_in_full() -> None:
    result = modelmonitor("render", "-f", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    # The recorded SLI rules share one labels dict; PyYAML would write it as &id001 / *id001.
    assert "&id" not in result.stdout
    assert "*id" not in result.stdout
    rule = next(d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "PrometheusRule")
    labels = [r["labels"] for r in rule["spec"]["groups"][0]["rules"] if "record" in r]
    assert all(label["monitor"] == "credit-score" for label in labels)


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
