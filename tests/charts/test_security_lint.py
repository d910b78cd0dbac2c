"""checkov (PyPI, pinned, run in its own environment with `uv tool run`) over every rendered
variant of both charts: each finding must be one of the accepted ones below, with its reason.
kube-linter was the first choice, but its Go module is not served by the module proxy here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from localservers.pytest_plugin import unavailable

from .charttools import Helm, chart_variants, variant_id

pytestmark = pytest.mark.slow

CHECKOV = "checkov==3.2.533"

# check id -> (the resources it may flag, as "Kind.name" prefixes, and why that is accepted).
ACCEPTED: dict[str, tuple[tuple[str, ...], str]] = {
    "CKV_K8S_11": (
        ("Deployment.", "StatefulSet."),
        "No CPU limits: CFS throttling adds latency to a latency-SLO'd API; requests are set, "
        "and memory limits too.",
    ),
    "CKV_K8S_43": (
        ("Deployment.", "StatefulSet."),
        "Image digests are the installer's choice: image.tag may carry one (tag@sha256:...); "
        "the default tags are the chart's appVersion.",
    ),
    "CKV_K8S_15": (
        ("Deployment.", "StatefulSet."),
        "IfNotPresent with immutable tags; Always would need a registry for every pod start "
        "(and kind loads images without one).",
    ),
    "CKV_K8S_38": (
        ("Deployment.monitoring-operator",),
        "The operator is a Kubernetes API client: its pod needs its ServiceAccount token.",
    ),
    "CKV_K8S_35": (
        ("Deployment.credit-api",),
        "The API takes its database URL from CREDIT_API_DATABASE_URL (docs/contracts.md); the "
        "Secret is referenced, never inlined. PostgreSQL reads its password from a file.",
    ),
    "CKV_K8S_40": (
        ("StatefulSet.credit-api-postgresql",),
        "UID 999 is the official PostgreSQL image's own postgres user, which owns its files.",
    ),
    "CKV2_K8S_6": (
        ("Pod.",),
        "NetworkPolicies depend on the cluster (Prometheus' namespace, the API's clients): "
        "networkPolicy.enabled turns them on (ci/production-values.yaml); the operator talks "
        "to the API server, which policies cannot name portably.",
    ),
}


def run_checkov(directory: Path) -> dict[str, Any]:
    # The Makefile installs uv as a module of the machine's python3.
    uv = [found] if (found := shutil.which("uv")) else ["python3", "-m", "uv"]
    command = [*uv, "tool", "run", "--from", CHECKOV, "checkov"]
    completed = subprocess.run(
        [
            *command,
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    if not completed.stdout.strip().startswith(("{", "[")):
        unavailable(f"checkov did not run: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout)
    results: dict[str, Any] = report[0] if isinstance(report, list) else report
    return results


def resource_name(check: dict[str, Any]) -> str:
    """ "Kind.namespace.name" -> "Kind.name" (checkov's Pod entries carry labels after it)."""
    kind, _namespace, name = check["resource"].split(".", 2)
    return f"{kind}.{name}"


def test_rendered_charts_have_no_unexplained_findings(helm: Helm, tmp_path: Path) -> None:
    for variant in chart_variants():
        chart, values_file = variant
        text = helm.template_text(chart, values_file=values_file)
        (tmp_path / f"{variant_id(variant)}.yaml").write_text(text)

    report = run_checkov(tmp_path)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100, "checkov checked almost nothing"
    unexplained = []
    for check in report["results"]["failed_checks"]:
        resources, _reason = ACCEPTED.get(check["check_id"], ((), ""))
        if not resource_name(check).startswith(resources):
            unexplained.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
    assert unexplained == [], "\n".join(unexplained)
