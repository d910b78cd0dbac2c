"""A chart regression that every static check passes is caught once the pods run.

The chart's unit tests read rendered YAML; a mistake only the kubelet can see gets through them.
Here a copy of the credit-api chart has the API read its database URL from a key the chart's
Secret does not write (a rename done on one side only): `helm template` renders it, the
manifests are valid, and `helm install` succeeds; on the node the API container never starts,
and the kubelet names the missing key. (The same values on the chart as it is run in the
end-to-end scenario, where the pods become ready.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo import cluster
from demo.imagebuild import build_images
from demo.podstack import ready_pods
from localkube.images import podman_image_archive
from localkube.kube import Kube
from localkube.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "credit-api"
WRITER_KEY_REF = "                  key: {{ .Values.database.secretKey }}\n"
WRONG_KEY = "writer-url"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.node,
    pytest.mark.images,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]


@pytest.fixture(scope="module")
def images(kube: Kube) -> dict[str, str]:
    built = build_images("credit-api", "postgres")
    kube.import_images([podman_image_archive(ref, lambda _: None) for ref in built.values()])
    return built


def _values(images: dict[str, str]) -> dict[str, Any]:
    """The chart's defaults (its PostgreSQL, the migration) with one replica, no ServiceMonitor."""
    return {
        "image": cluster.image_values(images["credit-api"]),
        "postgresql": {"image": cluster.image_values(images["postgres"])},
        "replicaCount": 1,
        "serviceMonitor": {"enabled": False},
    }


def _with_a_key_renamed_on_one_side(folder: Path) -> Path:
    chart = folder / "credit-api"
    shutil.copytree(CHART, chart)
    deployment = chart / "templates" / "deployment.yaml"
    text = deployment.read_text()
    assert text.count(WRITER_KEY_REF) == 1, "the API's secretKeyRef moved: update the test"
    deployment.write_text(text.replace(WRITER_KEY_REF, f"                  key: {WRONG_KEY}\n"))
    return chart


def _helm(kube: Kube, command: str, chart: Path, values: dict[str, Any], *args: str) -> str:
    values_file = chart.parent / f"{command}-values.json"
    values_file.write_text(json.dumps(values))
    return cluster.helm(kube, command, "credit-api", str(chart), f"--values={values_file}", *args)


def _api_pods(kube: Kube, namespace: str) -> dict[str, Any]:
    listed = kube.kubectl(
        "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=api", "-o", "json"
    )
    pods: dict[str, Any] = json.loads(listed.stdout)
    return pods


def _config_error(kube: Kube, namespace: str) -> str | None:
    """The kubelet's message for an API container it cannot configure, if there is one."""
    for pod in _api_pods(kube, namespace)["items"]:
        for status in pod.get("status", {}).get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting", {})
            if status["name"] == "api" and waiting.get("reason") == "CreateContainerConfigError":
                message: str = waiting.get("message", "")
                return message
    return None


def test_a_secret_key_renamed_on_one_side_renders_installs_and_fails_on_the_node(
    kube: Kube, kube_namespace: str, images: dict[str, str], tmp_path: Path
) -> None:
    chart = _with_a_key_renamed_on_one_side(tmp_path)
    values = _values(images)

    rendered = [d for d in yaml.safe_load_all(_helm(kube, "template", chart, values)) if d]
    secret = next(d for d in rendered if d["kind"] == "Secret")
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    api = deployment["spec"]["template"]["spec"]["containers"][0]
    reference = next(e for e in api["env"] if e["name"] == "CREDIT_API_DATABASE_URL")
    assert reference["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert WRONG_KEY not in secret["data"]

    _helm(kube, "install", chart, values, f"--namespace={kube_namespace}")
    message = wait_for(
        lambda: _config_error(kube, kube_namespace),
        timeout=300,
        what="the kubelet to refuse the API container its configuration",
    )
    assert f"couldn't find key {WRONG_KEY} in Secret {kube_namespace}/" in message, message
    assert not ready_pods(_api_pods(kube, kube_namespace))
