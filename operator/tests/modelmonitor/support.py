"""Helpers shared by the tests: example monitors, mistakes, real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmonitor.spec import Monitor, parse_monitor

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "manifests" / "examples" / "credit-score-monitor.yaml"
CASES = Path(__file__).parent / "cases"


def require_tool(name: str) -> str:
    """The tool's path; in CI a missing tool fails the test, elsewhere it skips it."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (run hack/install-system-deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def load_manifest(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def monitor_from(path: Path, namespace: str = "risk") -> Monitor:
    manifest = load_manifest(path)
    manifest["metadata"].setdefault("namespace", namespace)
    return parse_monitor(manifest)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _remove(document: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        document = document[part]
    del document[last]


def invalid_manifest(case: dict[str, Any], name: str = "broken") -> dict[str, Any]:
    """The example monitor with one mistake from cases/invalid-monitors.yaml."""
    manifest: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"]["name"] = name
    if "set" in case:
        manifest = _merge(manifest, case["set"])
    if "remove" in case:
        _remove(manifest, case["remove"])
    return manifest


INVALID_CASES: list[dict[str, Any]] = yaml.safe_load((CASES / "invalid-monitors.yaml").read_text())


# Drift schedules: {"accepted": [{schedule, interval}], "refused": [{schedule, refused, ...}]}.
SCHEDULES: dict[str, list[dict[str, Any]]] = yaml.safe_load((CASES / "schedules.yaml").read_text())


def helm_template(
    helm: Path,
    chart: Path,
    release: str,
    namespace: str,
    *show_only: str,
    values: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """`helm template` of some templates of a chart, with `--set` values, as objects."""
    command = [str(helm), "template", release, str(chart), "--namespace", namespace]
    command += [argument for template in show_only for argument in ("--show-only", template)]
    command += [argument for value in values for argument in ("--set", value)]
    rendered = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]
