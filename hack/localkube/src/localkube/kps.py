"""kube-prometheus-stack on the local node: the chart, the values it is installed with, its images.

No registry is reachable here, so each image the chart runs is built from the Go module of the
same version (``build.py``, versions in ``versions.py``) into a scratch image (``images.py``)
tagged exactly as the chart names it by default: once a node's containerd has imported the
archives, the chart runs unchanged (its pull policy is ``IfNotPresent``). Entrypoints, users,
working folders and ports are those of the upstream Dockerfiles of the variant the chart names
(Prometheus' ``-distroless`` one).

``install_values()`` (hack/kps/values.yaml) turns off what needs an image not built here; a
chart bump that names another image fails ``hack/localkube/tests/cluster/test_kps_images.py`` until
versions.py follows it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localkube.build import (
    ALERTMANAGER_SERVER,
    KUBE_PROMETHEUS_STACK,
    KUBE_STATE_METRICS_BINARY,
    PROMETHEUS_CONFIG_RELOADER,
    PROMETHEUS_OPERATOR_BINARY,
    PROMETHEUS_SERVER,
    Binary,
    Reporter,
    binary_path,
    ensure_binaries,
    report_to_stderr,
)
from localkube.errors import MissingToolError
from localkube.images import NOBODY, NONROOT, ImageArchive, ScratchImage, ensure_scratch_image
from localkube.paths import go_modules_dir
from localkube.versions import (
    ALERTMANAGER_VERSION,
    KUBE_PROMETHEUS_STACK_CHART_VERSION,
    KUBE_STATE_METRICS_VERSION,
    PROMETHEUS_OPERATOR_VERSION,
    PROMETHEUS_VERSION,
    prometheus_release,
)

CHART_ENV = "KUBE_PROMETHEUS_STACK_CHART"
CHART_FILE = f"kube-prometheus-stack-{KUBE_PROMETHEUS_STACK_CHART_VERSION}.tgz"
# Where the published chart is kept beside the repository (Helm repositories are unreachable).
VENDORED_CHART = Path("shared") / "vendor" / "charts" / CHART_FILE

# What the chart is installed with next to our charts (the tests, `make demo ARGS=--pods`,
# Tilt): the repository's hack/kps/values.yaml, which also turns off what needs an image not
# built here (Grafana, the node exporter, the admission webhook's certificate job).
VALUES_FILE = Path("hack") / "kps" / "values.yaml"


def install_values() -> dict[str, Any]:
    path = go_modules_dir().parent.parent / VALUES_FILE
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


# The operator's argument that names the config reloader's image (a container it adds to every
# Prometheus and Alertmanager pod).
RELOADER_ARGUMENT = "--prometheus-config-reloader="


@dataclass(frozen=True)
class ChartImage:
    """One image the chart runs: its reference, the binary it holds and where, and its config."""

    reference: str
    binary: Binary
    path: str
    user: str
    arguments: tuple[str, ...] = ()  # fixed arguments after the binary in the entrypoint
    workdir: str = ""
    ports: tuple[str, ...] = ()

    def scratch_image(self) -> ScratchImage:
        return ScratchImage(
            reference=self.reference,
            files={self.path: binary_path(self.binary)},
            entrypoint=(self.path, *self.arguments),
            user=self.user,
            ports=self.ports,
            workdir=self.workdir,
        )


PROMETHEUS_RELEASE = prometheus_release(PROMETHEUS_VERSION)
CHART_IMAGES = (
    ChartImage(
        reference=f"quay.io/prometheus-operator/prometheus-operator:{PROMETHEUS_OPERATOR_VERSION}",
        binary=PROMETHEUS_OPERATOR_BINARY,
        path="/bin/operator",
        user=NOBODY,
    ),
    ChartImage(
        # The operator's pods run it with `command: [/bin/prometheus-config-reloader]`.
        reference=(
            f"quay.io/prometheus-operator/prometheus-config-reloader:{PROMETHEUS_OPERATOR_VERSION}"
        ),
        binary=PROMETHEUS_CONFIG_RELOADER,
        path="/bin/prometheus-config-reloader",
        user=NOBODY,
    ),
    ChartImage(
        # Dockerfile.distroless: distroless' nonroot user. The operator passes every argument
        # (config, storage path on the pod's volume); v3 has no console templates to ship.
        reference=f"quay.io/prometheus/prometheus:v{PROMETHEUS_RELEASE}-distroless",
        binary=PROMETHEUS_SERVER,
        path="/bin/prometheus",
        user=NONROOT,
        workdir="/prometheus",
        ports=("9090/tcp",),
    ),
    ChartImage(
        reference=f"quay.io/prometheus/alertmanager:{ALERTMANAGER_VERSION}",
        binary=ALERTMANAGER_SERVER,
        path="/bin/alertmanager",
        user=NOBODY,
        workdir="/alertmanager",
        ports=("9093/tcp",),
    ),
    ChartImage(
        reference=f"registry.k8s.io/kube-state-metrics/kube-state-metrics:{KUBE_STATE_METRICS_VERSION}",
        binary=KUBE_STATE_METRICS_BINARY,
        path="/kube-state-metrics",
        user=NOBODY,
        arguments=("--port=8080", "--telemetry-port=8081"),
        ports=("8080/tcp", "8081/tcp"),
    ),
)


def kube_prometheus_stack_images(report: Reporter = report_to_stderr) -> list[ImageArchive]:
    """Every image the chart runs with ``install_values()``, built first where missing or stale.

    A cold build compiles four Go projects (README "Binaries, versions, cache": tens of minutes
    of CPU); each step says what it builds and how long it took.
    """
    ensure_binaries(KUBE_PROMETHEUS_STACK, report)
    return [ensure_scratch_image(image.scratch_image(), report) for image in CHART_IMAGES]


def chart_path() -> Path:
    """The chart to install: ``$KUBE_PROMETHEUS_STACK_CHART`` (a .tgz or an unpacked folder),
    else the vendored copy in ``shared/vendor/charts`` beside the repository."""
    configured = os.environ.get(CHART_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            raise MissingToolError(f"{CHART_ENV}={configured} does not exist")
        return path
    repository = go_modules_dir().parent.parent
    for folder in repository.parents:
        if (folder / VENDORED_CHART).is_file():
            return folder / VENDORED_CHART
    raise MissingToolError(
        f"kube-prometheus-stack {KUBE_PROMETHEUS_STACK_CHART_VERSION} is not beside the "
        f"repository ({VENDORED_CHART} in a parent folder of {repository}): set {CHART_ENV} to "
        "the chart (`helm pull prometheus-community/kube-prometheus-stack --version "
        f"{KUBE_PROMETHEUS_STACK_CHART_VERSION}`)"
    )


def chart_images(manifests: str) -> set[str]:
    """The images rendered manifests run: every ``image`` field (containers, and the Prometheus
    and Alertmanager resources' ``spec.image``) and the operator's config reloader argument.

    The operator's ``--thanos-default-base-image`` is not one: it is used only for a Prometheus
    with a Thanos sidecar, which the chart does not configure by default.
    """
    found: set[str] = set()
    for document in yaml.safe_load_all(manifests):
        for key, value in _fields(document):
            if key == "image" and isinstance(value, str):
                found.add(value)
            elif key == "args" and isinstance(value, list):
                found.update(
                    argument.removeprefix(RELOADER_ARGUMENT)
                    for argument in value
                    if isinstance(argument, str) and argument.startswith(RELOADER_ARGUMENT)
                )
    return found


def _fields(node: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) pair of every mapping nested in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from _fields(value)
    elif isinstance(node, list):
        for item in node:
            yield from _fields(item)
