"""The monitoring chart's admission policies, on the real API server of the local control plane.

The chart is installed with `helm install` (so the policies are rendered because the API server
serves them); then, authenticated as the operator's ServiceAccount, what the operator really
renders (modelmonitor's render functions, with the owner reference it sets) is accepted, and
objects that RBAC alone would let it write are refused: a CronJob running as another
ServiceAccount or image, a Role with other verbs, a RoleBinding to another subject... The same
objects are accepted from the cluster admin: the policies concern the operator only.
"""

from __future__ import annotations

import copy
import json
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from localkube.kube import Kube
from localkube.waiting import wait_for
from modelmonitor.reconcile import owner_reference
from modelmonitor.render import render_children
from modelmonitor.settings import Settings
from modelmonitor.spec import parse_monitor

from .charttools import CHARTS, REPO, Helm

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CRD = REPO / "manifests" / "crds" / "modelmonitors.monitoring.mlops.dev.yaml"
EXAMPLE = REPO / "manifests" / "examples" / "credit-score-monitor.yaml"
DRIFT_IMAGE = ("registry.example/drift-job", "1.2.3")
DENIED = "denied request"


@dataclass(frozen=True)
class Installed:
    namespace: str
    release: str
    operator: Path  # the operator ServiceAccount's kubeconfig

    def policies(self, kube: Kube) -> list[dict[str, Any]]:
        found = json.loads(kube.kubectl("get", "validatingadmissionpolicies", "-o", "json").stdout)[
            "items"
        ]
        prefix = f"{self.release}-operator-"
        return [p for p in found if p["metadata"]["name"].startswith(prefix)]


def operator_settings() -> Settings:
    """The operator's settings as the chart passes them (drift image, labels)."""
    return Settings(
        drift_image=":".join(DRIFT_IMAGE),
        rule_labels={"release": "kube-prometheus-stack"},
        dashboard_label={"grafana_dashboard": "1"},
    )


def apply_as(kube: Kube, kubeconfig: Path | None, obj: dict[str, Any], *extra: str) -> str:
    """Server-side apply as the operator does (field manager modelmonitor); stderr when refused,
    "" when accepted."""
    identity = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    completed = kube.kubectl(
        *identity, "apply", "--server-side", "--force-conflicts", "--field-manager",
        "modelmonitor", *extra, "-f", "-", input=json.dumps(obj), check=False,
    )  # fmt: skip
    return "" if completed.returncode == 0 else completed.stderr


def create_monitor(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    """A ModelMonitor created by the admin (the operator never creates them); its children."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    manifest["metadata"] = {"name": name, "namespace": namespace}
    kube.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    body: dict[str, Any] = json.loads(
        kube.kubectl("get", "modelmonitor", name, "-n", namespace, "-o", "json").stdout
    )
    return body


def rendered_children(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the operator applies for this monitor, by kind: its renderers plus its owner
    reference (reconcile.py)."""
    children = render_children(parse_monitor(body), operator_settings())
    for child in children:
        child["metadata"]["ownerReferences"] = [owner_reference(body)]
    return {child["kind"]: child for child in children}


@pytest.fixture(scope="module")
def installed(kube: Kube, helm: Helm) -> Iterator[Installed]:
    # Containing the chart name, the release names the operator "<release>-operator".
    release = f"monitoring-{secrets.token_hex(3)}"
    namespace = f"{release}-system"
    kube.kubectl("create", "namespace", namespace)
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD))
    repository, tag = DRIFT_IMAGE
    installed = subprocess.run(
        [str(helm.binary), "install", release, str(CHARTS / "monitoring"), "--namespace",
         namespace, "--kubeconfig", str(kube.kubeconfig), "--set", "crds.install=false",
         "--set", f"driftJob.image.repository={repository}", "--set",
         f"driftJob.image.tag={tag}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    operator = kube.service_account_kubeconfig(namespace, f"{release}-operator")
    yield Installed(namespace, release, operator)
    subprocess.run(
        [str(helm.binary), "uninstall", release, "--namespace", namespace, "--kubeconfig",
         str(kube.kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    kube.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def monitor(kube: Kube, installed: Installed) -> dict[str, Any]:
    """A fresh monitor, once the policies are in force (the API server loads them shortly
    after they are created)."""
    body = create_monitor(kube, installed.namespace, f"m-{secrets.token_hex(3)}")
    stranger = copy.deepcopy(rendered_children(body)["ServiceAccount"])
    stranger["metadata"]["name"] = "stranger"
    wait_for(
        lambda: DENIED in apply_as(kube, installed.operator, stranger, "--dry-run=server"),
        timeout=30,
        what="the admission policies in force",
    )
    return body


def test_the_policies_type_check_against_their_kinds(kube: Kube, installed: Installed) -> None:
    """One policy per kind, so every expression is checked against that kind's schema."""
    policies = installed.policies(kube)
    assert sorted(p["metadata"]["name"].rsplit("-", 1)[1] for p in policies) == [
        "configmaps", "cronjobs", "prometheusrules", "rolebindings", "roles", "serviceaccounts",
    ]  # fmt: skip

    def checked() -> list[dict[str, Any]] | None:
        current = installed.policies(kube)
        done = all(
            p.get("status", {}).get("observedGeneration") == p["metadata"]["generation"]
            for p in current
        )
        return current if done else None

    for policy in wait_for(checked, timeout=60, what="the policies type-checked"):
        assert policy["status"].get("typeChecking", {}).get("expressionWarnings") is None, policy


def test_what_the_operator_renders_is_accepted(
    kube: Kube, installed: Installed, monitor: dict[str, Any]
) -> None:
    children = rendered_children(monitor)
    for child in children.values():
        assert apply_as(kube, installed.operator, child) == "", child["kind"]
    # An update of its own children (a changed spec), and a prune.
    cronjob = copy.deepcopy(children["CronJob"])
    cronjob["spec"]["suspend"] = True
    assert apply_as(kube, installed.operator, cronjob) == ""
    name = children["ConfigMap"]["metadata"]["name"]
    deleted = kube.kubectl(
        "--kubeconfig", str(installed.operator), "delete", "configmap", name, "-n",
        installed.namespace, check=False,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr


def test_long_monitor_names_get_the_children_naming_py_gives_them(
    kube: Kube, installed: Installed
) -> None:
    """Names cut with a hash (naming.child_name) pass the policies' own derivation."""
    body = create_monitor(kube, installed.namespace, "credit-score-" + "x" * 100 + "-monitor")
    children = rendered_children(body)
    assert children["CronJob"]["metadata"]["name"] != body["metadata"]["name"] + "-drift"
    wait_for(
        lambda: apply_as(kube, installed.operator, children["ServiceAccount"]) == "",
        timeout=30,
        what="the ServiceAccount of a long-named monitor accepted",
    )
    for child in children.values():
        assert apply_as(kube, installed.operator, child) == "", child["kind"]
    # Another monitor's long name does not fit it.
    other = copy.deepcopy(children["Role"])
    other["metadata"]["name"] = "credit-score-yyyyyyyyyyyyyyyyyyyyyyyyy-0123abcd-drift"
    assert "after its ModelMonitor" in apply_as(kube, installed.operator, other)


def _cronjob_pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _other_service_account(cronjob: dict[str, Any]) -> None:
    _cronjob_pod(cronjob)["serviceAccountName"] = "default"


def _other_image(cronjob: dict[str, Any]) -> None:
    _cronjob_pod(cronjob)["containers"][0]["image"] = "registry.example/tools:1"


def _shell(cronjob: dict[str, Any]) -> None:
    _cronjob_pod(cronjob)["containers"][0]["command"] = ["sh", "-c", "env"]


def _password_from_a_secret(cronjob: dict[str, Any]) -> None:
    _cronjob_pod(cronjob)["containers"][0]["env"].append(
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    )


def _another_store(cronjob: dict[str, Any]) -> None:
    _cronjob_pod(cronjob)["containers"][0]["args"] += ["--store-url", "postgresql://x/y"]


def _host_path(cronjob: dict[str, Any]) -> None:
    pod = _cronjob_pod(cronjob)
    pod["volumes"].append({"name": "node", "hostPath": {"path": "/"}})


def _privileged(cronjob: dict[str, Any]) -> None:
    context = _cronjob_pod(cronjob)["containers"][0]["securityContext"]
    context["allowPrivilegeEscalation"] = True
    context["privileged"] = True


# RBAC already refuses a Role granting what the operator does not hold (no escalate verb);
# these grant what it holds, which only the policy keeps out of a drift Role.
def _more_verbs(role: dict[str, Any]) -> None:
    role["rules"][0]["verbs"] = ["get", "patch"]
    role["rules"].append(
        {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create", "patch"]}
    )


def _watch_every_monitor(role: dict[str, Any]) -> None:
    role["rules"] = [
        {
            "apiGroups": ["monitoring.mlops.dev"],
            "resources": ["modelmonitors"],
            "verbs": ["get", "list", "watch"],
        }
    ]


def _other_monitor(role: dict[str, Any]) -> None:
    role["rules"][0]["resourceNames"] = ["someone-else"]


def _every_monitor(role: dict[str, Any]) -> None:
    del role["rules"][0]["resourceNames"]


def _other_subject(binding: dict[str, Any]) -> None:
    binding["subjects"][0]["name"] = "default"


def _no_dashboard_label(config_map: dict[str, Any]) -> None:
    del config_map["metadata"]["labels"]["grafana_dashboard"]


def _other_name(obj: dict[str, Any]) -> None:
    obj["metadata"]["name"] = "kube-proxy-drift"


def _no_owner(obj: dict[str, Any]) -> None:
    del obj["metadata"]["ownerReferences"]


REFUSED: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("CronJob", "another ServiceAccount", _other_service_account, "own ServiceAccount"),
    ("CronJob", "another image", _other_image, "drift image registry.example/drift-job:1.2.3"),
    ("CronJob", "a shell", _shell, "runs drift-job"),
    ("CronJob", "a password from a Secret", _password_from_a_secret, "no other environment"),
    ("CronJob", "another store", _another_store, "store URL from DRIFT_STORE_URL"),
    ("CronJob", "the node's filesystem", _host_path, "emptyDir and PersistentVolumeClaim"),
    ("CronJob", "a privileged container", _privileged, "no host namespace, privileged"),
    ("CronJob", "another name", _other_name, "names a CronJob after its ModelMonitor"),
    ("CronJob", "no owner", _no_owner, "controlled by one ModelMonitor"),
    ("Role", "create on CronJobs", _more_verbs, "only get and patch on modelmonitors/status"),
    ("Role", "watch on monitors", _watch_every_monitor, "only get and patch on modelmonitors"),
    ("Role", "another monitor's status", _other_monitor, "of its own ModelMonitor"),
    ("Role", "every monitor's status", _every_monitor, "of its own ModelMonitor"),
    ("RoleBinding", "another subject", _other_subject, "to the ServiceAccount of the same"),
    ("ServiceAccount", "another name", _other_name, "names a ServiceAccount after"),
    ("ConfigMap", "no dashboard label", _no_dashboard_label, "only dashboard ConfigMaps"),
    ("PrometheusRule", "no owner", _no_owner, "controlled by one ModelMonitor"),
]


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [(kind, change, message) for kind, _, change, message in REFUSED],
    ids=[f"{kind} with {what}" for kind, what, _, _ in REFUSED],
)
def test_the_operator_is_refused_what_it_does_not_render(
    kube: Kube,
    installed: Installed,
    monitor: dict[str, Any],
    kind: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    children = rendered_children(monitor)
    if kind == "RoleBinding":
        # RBAC resolves the Role a binding names before admission: it must exist.
        assert apply_as(kube, installed.operator, children["Role"]) == ""
    obj = copy.deepcopy(children[kind])
    change(obj)
    refused = apply_as(kube, installed.operator, obj)
    assert DENIED in refused, refused
    assert message in refused, refused
    # A valid object all the same: the admin may create it, the policies concern the operator.
    assert apply_as(kube, None, obj, "--dry-run=server") == ""


def test_the_operator_cannot_take_over_or_delete_what_it_does_not_own(
    kube: Kube, installed: Installed, monitor: dict[str, Any]
) -> None:
    namespace = installed.namespace
    # Someone else's CronJob that happens to carry the name the monitor's would have.
    foreign = copy.deepcopy(rendered_children(monitor)["CronJob"])
    del foreign["metadata"]["ownerReferences"]
    kube.kubectl("apply", "-f", "-", input=json.dumps(foreign))
    refused = apply_as(kube, installed.operator, rendered_children(monitor)["CronJob"])
    assert "changes only objects its ModelMonitor already controls" in refused, refused
    deleted = kube.kubectl(
        "--kubeconfig", str(installed.operator), "delete", "cronjob",
        foreign["metadata"]["name"], "-n", namespace, check=False,
    )  # fmt: skip
    assert "deletes only the children of ModelMonitors" in deleted.stderr, deleted.stderr
    # RBAC lets it delete any ConfigMap where it watches; the policy does not.
    deleted = kube.kubectl(
        "--kubeconfig", str(installed.operator), "delete", "configmap", "kube-root-ca.crt",
        "-n", namespace, check=False,
    )  # fmt: skip
    assert "deletes only the children of ModelMonitors" in deleted.stderr, deleted.stderr
