"""charts/monitoring's Evidently UI (reports.ui): what `helm template` renders, and that the
rendered commands serve the workspace and the rendered settings give the operator its links."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from drift_job.workspace import RunLabels, add_run, row_count_report
from localservers.ports import free_port
from localservers.process import ServerProcess
from modelmonitor.render.reportlinks import report_links
from modelmonitor.reportsui import project_id
from modelmonitor.settings import Settings
from modelmonitor.spec import parse_monitor

from .charttools import Helm, HelmError, find

CHART = "monitoring"
UI_NAME = "monitoring-reports-ui"
KEEP: dict[str, Any] = {"description": "drift runs", "keep": 3}
ONE_NAMESPACE: dict[str, Any] = {
    "reports": {
        "persistence": {"enabled": True, "namespaces": ["credit"]},
        "ui": {"enabled": True, "externalURL": "http://127.0.0.1:8000"},
    }
}


def _operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = find(objects, "Deployment", "monitoring-operator")["spec"]["template"]["spec"]
    return {e["name"]: e.get("value", "") for e in container["containers"][0]["env"]}


def _ui_pods(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The UI's pod spec in each namespace."""
    return {
        o["metadata"]["namespace"]: o["spec"]["template"]["spec"]
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == UI_NAME
    }


def test_no_ui_and_no_links_by_default(helm: Helm) -> None:
    objects = helm.template(CHART, namespace="monitoring")
    assert _ui_pods(objects) == {}
    assert _operator_env(objects)["MODELMONITOR_REPORTS_UI_URLS"] == "{}"
    assert _operator_env(objects)["MODELMONITOR_REPORTS_CLAIM_NAME"] == "drift-reports"


def test_a_ui_without_an_external_url_links_nothing(helm: Helm) -> None:
    values = {"reports": {"ui": {"enabled": True}}}
    objects = helm.template(CHART, values, namespace="monitoring")
    assert list(_ui_pods(objects)) == ["monitoring"]  # the release namespace's claim
    assert _operator_env(objects)["MODELMONITOR_REPORTS_UI_URLS"] == "{}"


def test_each_namespace_gets_its_ui_over_its_claim_read_only_and_restricted(helm: Helm) -> None:
    values = {
        "driftJob": {"image": {"repository": "reg/drift", "tag": "7"}},
        "reports": {
            "persistence": {"enabled": True, "namespaces": ["credit", "fraud"]},
            "ui": {"enabled": True, "externalURL": "https://reports-{namespace}.example.com"},
        },
    }
    objects = helm.template(CHART, values)
    pods = _ui_pods(objects)
    assert sorted(pods) == ["credit", "fraud"]
    services = {
        o["metadata"]["namespace"]: o
        for o in objects
        if o["kind"] == "Service" and o["metadata"]["name"] == UI_NAME
    }
    assert sorted(services) == ["credit", "fraud"]
    assert services["credit"]["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert services["credit"]["spec"]["selector"]["app.kubernetes.io/component"] == "reports-ui"
    for pod in pods.values():
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # The drift jobs write as 65532 (render/cronjob.py): the UI reads, its init creates.
        assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] == 65532
        assert pod["volumes"][0] == {
            "name": "reports",
            "persistentVolumeClaim": {"claimName": "drift-reports"},
        }
        assert all("persistentVolumeClaim" in v or "emptyDir" in v for v in pod["volumes"])
        (init,) = pod["initContainers"]
        (ui,) = pod["containers"]
        for container in (init, ui):
            assert container["image"] == "reg/drift:7"
            assert container["command"] == ["reports-ui"]
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
        assert init["args"] == ["--workspace", "/reports/workspace", "--prepare"]
        assert {"name": "reports", "mountPath": "/reports"} in init["volumeMounts"]
        assert {"name": "reports", "mountPath": "/reports", "readOnly": True} in ui["volumeMounts"]
        assert ui["args"][ui["args"].index("--poll-seconds") + 1] == "10"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert ui[probe]["httpGet"] == {"path": "/api/version", "port": "http"}
    assert _operator_env(objects)["MODELMONITOR_REPORTS_UI_URLS"] == (
        '{"credit":"https://reports-credit.example.com",'
        '"fraud":"https://reports-fraud.example.com"}'
    )


def test_one_url_for_several_uis_is_refused(helm: Helm) -> None:
    values = {
        "reports": {
            "persistence": {"namespaces": ["credit", "fraud"]},
            "ui": {"enabled": True, "externalURL": "http://127.0.0.1:8000"},
        }
    }
    with pytest.raises(HelmError, match=r"put \{namespace\} in the URL"):
        helm.template(CHART, values)


@pytest.mark.parametrize(
    ("ui", "complaint"),
    [
        ({"externalURL": "reports.example.com"}, "externalURL"),
        ({"pollSeconds": -1}, "pollSeconds"),
        ({"enable": True}, "enable"),
        ({"securityContext": {"runAsNonRot": True}}, "runAsNonRot"),
    ],
)
def test_values_schema_rejects_bad_ui_values(
    helm: Helm, ui: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmError, match=complaint):
        helm.template(CHART, {"reports": {"ui": ui}})


def test_the_operator_links_monitors_on_the_uis_claim_from_the_rendered_settings(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _operator_env(helm.template(CHART, ONE_NAMESPACE)).items():
        monkeypatch.setenv(name, value)
    settings = Settings()

    def monitor(namespace: str, claim: str) -> Any:
        return parse_monitor(
            {
                "metadata": {"name": "credit-score", "namespace": namespace},
                "spec": {
                    "model": {"name": "credit-score"},
                    "target": {"service": "credit-api"},
                    "store": {"secretRef": {"name": "credit-api-db"}},
                    "drift": {"reports": {"persistentVolumeClaim": claim}},
                },
            }
        )

    links = report_links(monitor("credit", "drift-reports"), settings)
    assert links is not None
    assert links.project_url == (
        f"http://127.0.0.1:8000/projects/{project_id('credit/credit-score')}"
    )
    assert report_links(monitor("fraud", "drift-reports"), settings) is None
    assert report_links(monitor("credit", "other-claim"), settings) is None


def _command(container: dict[str, Any], volume: Path, **replace: str) -> list[str]:
    """The container's command line with /reports on `volume` and some flags' values replaced."""
    argv = [*container["command"], *container["args"]]
    for flag, value in replace.items():
        argv[argv.index(flag) + 1] = value
    argv = [part.replace("/reports", str(volume), 1) for part in argv]
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:]]


def test_the_rendered_commands_prepare_and_serve_the_workspace(helm: Helm, tmp_path: Path) -> None:
    """The init container's and the UI's command lines, run here on a directory as the volume."""
    (pod,) = _ui_pods(helm.template(CHART, ONE_NAMESPACE)).values()
    volume = tmp_path / "volume"
    volume.mkdir()
    prepare = subprocess.run(
        _command(pod["initContainers"][0], volume), capture_output=True, text=True, check=False
    )
    assert prepare.returncode == 0, prepare.stderr
    labels = RunLabels("first run", ("NoDrift",), {}, datetime(2026, 1, 1))  # naive UTC
    workspace = volume / "workspace"
    run = add_run(workspace, "credit/credit-score", row_count_report(5), labels=labels, **KEEP)

    port = free_port()
    ui = pod["containers"][0]
    command = _command(ui, volume, **{"--host": "127.0.0.1", "--port": str(port)})
    server = ServerProcess(command, tmp_path / "ui.log")
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_until(
            lambda: httpx.get(f"{url}/api/version", timeout=2).status_code == 200, 90, "the UI"
        )
        runs = httpx.get(f"{url}/api/projects/{run.project}/snapshots", timeout=10).json()
        assert [r["id"] for r in runs] == [str(run.run)]
    finally:
        server.stop()
