"""Helpers of the chart tests: where the charts are, and `helm template` as Python objects."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
CHART_NAMES = ("credit-api", "monitoring")


def ci_values_files(chart: str) -> list[Path]:
    return sorted((CHARTS / chart / "ci").glob("*-values.yaml"))


def chart_variants() -> list[tuple[str, Path | None]]:
    """Every chart with its defaults and with each of its ci/*-values.yaml."""
    return [(chart, values) for chart in CHART_NAMES for values in [None, *ci_values_files(chart)]]


def variant_id(variant: tuple[str, Path | None]) -> str:
    chart, values = variant
    return f"{chart}-{values.stem if values else 'defaults'}"


def kubernetes_version() -> str:
    """The Kubernetes version the control plane runs, which helm renders for (Capabilities)."""
    from localkube.versions import KUBERNETES_VERSION  # noqa: PLC0415

    return KUBERNETES_VERSION


# APIs the control plane serves that `helm template` cannot discover (its built-in list has
# group/versions, not kinds): the charts render what depends on them, as `helm install` would.
SERVED_API_VERSIONS = ("admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",)


class HelmError(Exception):
    """helm exited non-zero; the message is its stderr."""


@dataclass(frozen=True)
class Helm:
    binary: Path
    work: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, check=False, timeout=120
        )

    def values_args(self, values_file: Path | None, values: Mapping[str, Any] | None) -> list[str]:
        args: list[str] = []
        if values_file is not None:
            args += ["--values", str(values_file)]
        if values:
            extra = self.work / f"values-{abs(hash(repr(values)))}.yaml"
            extra.write_text(yaml.safe_dump(dict(values)))
            args += ["--values", str(extra)]
        return args

    def template_text(
        self,
        chart: str,
        values: Mapping[str, Any] | None = None,
        *,
        values_file: Path | None = None,
        release: str | None = None,
        namespace: str = "credit",
        api_versions: Sequence[str] = SERVED_API_VERSIONS,
    ) -> str:
        """`helm template` of a chart as YAML text, or HelmError with helm's message."""
        completed = self.run(
            "template",
            release or chart,
            str(CHARTS / chart),
            "--namespace",
            namespace,
            "--kube-version",
            kubernetes_version(),
            *(f"--api-versions={version}" for version in api_versions),
            *self.values_args(values_file, values),
        )
        if completed.returncode != 0:
            raise HelmError(completed.stderr)
        return completed.stdout

    def template(
        self,
        chart: str,
        values: Mapping[str, Any] | None = None,
        *,
        values_file: Path | None = None,
        release: str | None = None,
        namespace: str = "credit",
        api_versions: Sequence[str] = SERVED_API_VERSIONS,
    ) -> list[dict[str, Any]]:
        """The rendered objects of a chart, or HelmError with helm's message."""
        text = self.template_text(
            chart,
            values,
            values_file=values_file,
            release=release,
            namespace=namespace,
            api_versions=api_versions,
        )
        return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one rendered object of that kind (and name)."""
    matches = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {len(matches)}"
    return matches[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)
