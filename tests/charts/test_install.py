"""Both charts installed with pyhelm3 into a real control plane, then upgraded and uninstalled.

No kubelet runs there (pods stay Pending), so releases are installed without waiting; what is
checked is what the API server decides: the release is deployed, the CRD is served, the
example ModelMonitor is accepted, RBAC grants the operator exactly what it needs, the
generated database password survives an upgrade, and the kept objects stay after uninstall.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyhelm3.errors
import pytest
import yaml
from kubernetes import client
from pyhelm3 import Client

from localkube.kube import Kube, KubectlError
from localkube.waiting import wait_for

from .charttools import CHARTS, REPO, Helm

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CRD = "modelmonitors.monitoring.mlops.dev"
EXAMPLE = REPO / "manifests/examples/credit-score-monitor.yaml"
OWNERSHIP_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.fixture
def helm_client(kube: Kube, helm: Helm) -> Client:
    return Client(executable=str(helm.binary), kubeconfig=kube.kubeconfig, default_timeout="2m")


def get_json(kube: Kube, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kube.kubectl("get", *args, "-o", "json").stdout)
    return result


def can_i(kube: Kube, account: str, *args: str) -> bool:
    completed = kube.kubectl("auth", "can-i", "--as", account, *args, check=False)
    return completed.stdout.strip() == "yes"


@contextlib.contextmanager
def crd_restored_afterwards(kube: Kube) -> Iterator[bool]:
    """Leaves the shared cluster's ModelMonitor CRD as it was found: deleted if this test created
    it (the chart keeps it on uninstall), else with its previous Helm ownership. Yields whether
    it existed, in which case the release must take ownership of it."""
    before = kube.kubectl("get", "crd", CRD, "-o", "json", check=False)
    existed = before.returncode == 0
    try:
        yield existed
    finally:
        if not existed:
            kube.kubectl("delete", "crd", CRD, "--ignore-not-found", "--wait=false")
        else:
            metadata = json.loads(before.stdout)["metadata"]
            annotations = metadata.get("annotations", {})
            restore = [
                f"{key}={annotations[key]}" if key in annotations else f"{key}-"
                for key in OWNERSHIP_ANNOTATIONS
            ]
            kube.kubectl("annotate", "crd", CRD, "--overwrite", *restore)
            managed_by = metadata.get("labels", {}).get("app.kubernetes.io/managed-by")
            label = (
                f"app.kubernetes.io/managed-by={managed_by}"
                if managed_by
                else ("app.kubernetes.io/managed-by-")
            )
            kube.kubectl("label", "crd", CRD, "--overwrite", label)


def test_charts_install_upgrade_and_uninstall(
    kube: Kube, kube_namespace: str, helm_client: Client, tmp_path: Path
) -> None:
    namespace = kube_namespace
    # ClusterRoles and their bindings are named after the release: unique per test run.
    monitoring_release = f"monitoring-{secrets.token_hex(3)}"
    operator_account = f"system:serviceaccount:{namespace}:{monitoring_release}-operator"
    monitoring_chart = run(helm_client.get_chart(CHARTS / "monitoring"))
    api_chart = run(helm_client.get_chart(CHARTS / "credit-api"))

    with crd_restored_afterwards(kube) as crd_existed:
        installed = run(
            helm_client.install_or_upgrade_release(
                monitoring_release,
                monitoring_chart,
                {},
                namespace=namespace,
                take_ownership=crd_existed,
                wait=False,
            )
        )
        assert installed.status.value == "deployed"
        assert "kubectl get crd modelmonitors.monitoring.mlops.dev" in (installed.notes or "")

        # The CRD is served: Established, and the example monitor is accepted by its schema.
        wait_for(
            lambda: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in get_json(kube, "crd", CRD).get("status", {}).get("conditions", [])
            ),
            timeout=30,
            what=f"CRD {CRD} to be established",
        )
        crd = get_json(kube, "crd", CRD)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

        api = run(
            helm_client.install_or_upgrade_release(
                "credit-api", api_chart, {}, namespace=namespace, wait=False
            )
        )
        assert api.status.value == "deployed"
        assert "credit-score-monitor.yaml" in (api.notes or "")
        kube.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
        monitor = get_json(kube, "-n", namespace, "modelmonitor", "credit-score")
        target = monitor["spec"]["target"]
        assert (target["service"], target["port"]) == ("credit-api", "http")
        assert monitor["spec"]["store"]["secretRef"] == {
            "name": "credit-api-db",
            "key": "reader-dsn",
        }
        core = client.CoreV1Api(kube.api_client)
        assert core.read_namespaced_service("credit-api", namespace).spec.ports[0].name == "http"

        # A broken monitor is refused by the CRD's schema, so the schema is really in force.
        rejected = kube.kubectl(
            "apply",
            "-n",
            namespace,
            "-f",
            "-",
            check=False,
            input=EXAMPLE.read_text().replace("minRows: 200", "minRows: many"),
        )
        assert rejected.returncode != 0
        assert "minRows" in rejected.stderr

        # RBAC as the API server evaluates it for the operator's ServiceAccount.
        assert can_i(kube, operator_account, "watch", "modelmonitors", "--all-namespaces")
        assert can_i(
            kube,
            operator_account,
            "patch",
            "modelmonitors",
            "--subresource=status",
            "-n",
            namespace,
        )
        assert can_i(kube, operator_account, "create", "cronjobs.batch", "-n", namespace)
        assert can_i(
            kube,
            operator_account,
            "create",
            "prometheusrules.monitoring.coreos.com",
            "-n",
            namespace,
        )
        assert not can_i(kube, operator_account, "get", "secrets", "-n", namespace)
        assert not can_i(kube, operator_account, "delete", "modelmonitors", "-n", namespace)
        assert not can_i(kube, operator_account, "create", "clusterroles")

        # With the operator's own token: it can grant the drift job's Role (it holds the same
        # permissions, so no escalate verb is needed; the admission policies want it controlled
        # by its monitor), and cannot read the database Secret.
        operator_config = kube.service_account_kubeconfig(
            namespace, f"{monitoring_release}-operator"
        )
        owner = {
            "apiVersion": "monitoring.mlops.dev/v1alpha1",
            "kind": "ModelMonitor",
            "name": "credit-score",
            "uid": monitor["metadata"]["uid"],
            "controller": True,
        }
        drift_role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": "credit-score-drift",
                "namespace": namespace,
                "ownerReferences": [owner],
            },
            "rules": [
                {
                    "apiGroups": ["monitoring.mlops.dev"],
                    "resources": ["modelmonitors/status"],
                    "resourceNames": ["credit-score"],
                    "verbs": ["get", "patch"],
                }
            ],
        }
        kube.kubectl(
            "--kubeconfig",
            str(operator_config),
            "apply",
            "--server-side",
            "--field-manager",
            "modelmonitor",
            "-f",
            "-",
            input=json.dumps(drift_role),
        )
        with pytest.raises(KubectlError, match="forbidden"):
            kube.kubectl(
                "--kubeconfig",
                str(operator_config),
                "-n",
                namespace,
                "get",
                "secret",
                "credit-api-db",
            )

        # Upgrade: the generated password is kept (lookup), and with it every role's (derived
        # from it); the new values apply.
        password = read_secret(core, namespace, "credit-api-db", "password")
        urls = {
            key: read_secret(core, namespace, "credit-api-db", key)
            for key in ("owner-dsn", "writer-dsn", "reader-dsn")
        }
        upgraded = run(
            helm_client.install_or_upgrade_release(
                "credit-api", api_chart, {"replicaCount": 3}, namespace=namespace, wait=False
            )
        )
        assert upgraded.revision == 2
        assert read_secret(core, namespace, "credit-api-db", "password") == password
        for key, url in urls.items():
            assert read_secret(core, namespace, "credit-api-db", key) == url
        assert f"@credit-api-postgresql.{namespace}.svc:5432/" in urls["writer-dsn"]
        apps = client.AppsV1Api(kube.api_client)
        assert apps.read_namespaced_deployment("credit-api", namespace).spec.replicas == 3

        # Upgrade with a new field in the CRD: the cluster serves it (Helm never upgrades crds/,
        # which is why the chart applies the CRD as a template).
        probe_monitor = EXAMPLE.read_text().replace("spec:", "spec:\n  upgradeProbe: seen", 1)
        dry_run = ("apply", "-n", namespace, "--dry-run=server", "-f", "-")
        assert kube.kubectl(*dry_run, check=False, input=probe_monitor).returncode != 0
        upgraded = run(
            helm_client.install_or_upgrade_release(
                monitoring_release,
                run(helm_client.get_chart(chart_with_new_crd_field(tmp_path, "upgradeProbe"))),
                {},
                namespace=namespace,
                wait=False,
            )
        )
        assert upgraded.revision == 2
        assert "upgradeProbe" in served_spec_fields(kube)
        kube.kubectl(*dry_run, input=probe_monitor)

        # Upgrade back to this chart, with namespaced RBAC: the CRD is the source again and the
        # bindings follow the values.
        upgraded = run(
            helm_client.install_or_upgrade_release(
                monitoring_release,
                monitoring_chart,
                {"operator": {"watchNamespaces": [namespace]}},
                namespace=namespace,
                wait=False,
            )
        )
        assert upgraded.revision == 3
        assert "upgradeProbe" not in served_spec_fields(kube)
        assert can_i(kube, operator_account, "watch", "modelmonitors", "-n", namespace)
        assert not can_i(kube, operator_account, "watch", "modelmonitors", "-n", "default")

        # Uninstall: the releases' objects go; the CRD, the monitors and the Secret stay.
        run(helm_client.uninstall_release("credit-api", namespace=namespace, wait=False))
        run(helm_client.uninstall_release(monitoring_release, namespace=namespace, wait=False))
        assert list(run(helm_client.list_releases(namespace=namespace))) == []
        wait_for(
            lambda: (
                kube.kubectl(
                    "get", "-n", namespace, "deployment", "credit-api", check=False
                ).returncode
                != 0
            ),
            timeout=30,
            what="the credit-api Deployment to be deleted",
        )
        assert get_json(kube, "crd", CRD)["metadata"]["name"] == CRD
        assert get_json(kube, "-n", namespace, "modelmonitor", "credit-score")
        assert read_secret(core, namespace, "credit-api-db", "password") == password
        assert not can_i(kube, operator_account, "watch", "modelmonitors", "-n", namespace)


def chart_with_new_crd_field(work: Path, field: str) -> Path:
    """A copy of the monitoring chart whose ModelMonitor CRD has one more optional spec field."""
    chart = work / "monitoring"
    shutil.copytree(CHARTS / "monitoring", chart)
    for path in (chart / "files" / "crds").glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            spec["properties"][field] = {"type": "string"}
        path.write_text(yaml.safe_dump(crd))
    return chart


def served_spec_fields(kube: Kube) -> set[str]:
    versions = get_json(kube, "crd", CRD)["spec"]["versions"]
    served = next(v for v in versions if v["served"] and v["storage"])
    return set(served["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"])


def read_secret(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str:
    secret = core.read_namespaced_secret(name, namespace)
    return base64.b64decode(secret.data[key]).decode()


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"securityContext": {"readOnlyRootFilesystm": True}}, "readOnlyRootFilesystm"),
        ({"podSecurityContext": {"runAsNonRot": True}}, "runAsNonRot"),
        ({"resources": {"limits": {"memroy": "1Gi"}}}, "memroy"),
        ({"postgresql": {"securityContext": {"privileged": "no"}}}, "privileged"),
    ],
)
def test_a_typo_inside_a_kubernetes_field_fails_the_install(
    kube_namespace: str, helm_client: Client, values: dict[str, Any], complaint: str
) -> None:
    """An unknown field inside a Kubernetes struct would be dropped without a word by Helm and
    the API server (a typo in readOnlyRootFilesystem would leave it writable): the values
    schema's strict Kubernetes definitions refuse it. A wrong resource name or type is refused
    too. Nothing is installed either way."""
    chart = run(helm_client.get_chart(CHARTS / "credit-api"))
    with pytest.raises(pyhelm3.errors.Error, match=complaint):
        run(
            helm_client.install_or_upgrade_release(
                "credit-api", chart, values, namespace=kube_namespace, wait=False
            )
        )
    assert list(run(helm_client.list_releases(namespace=kube_namespace))) == []
