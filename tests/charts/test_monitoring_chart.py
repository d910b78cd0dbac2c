"""Behaviour of charts/monitoring (the operator), read from `helm template` output."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localservers.pytest_plugin import unavailable

from .charttools import CHARTS, REPO, Helm, HelmError, find, kinds

CHART = "monitoring"
CRD_SOURCE = REPO / "manifests" / "crds"
CRD_COPY = CHARTS / CHART / "files" / "crds"

# What the operator needs (operator/src/modelmonitor/README.md, "RBAC the operator needs"),
# namespaced and cluster-wide.
EXPECTED_NAMESPACED = {
    ("monitoring.mlops.dev", "modelmonitors"): {"get", "list", "watch", "patch"},
    ("monitoring.mlops.dev", "modelmonitors/status"): {"get", "patch"},
    ("batch", "cronjobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "serviceaccounts"): {"get", "list", "watch", "create", "patch", "delete"},
    ("rbac.authorization.k8s.io", "roles"): {"get", "list", "watch", "create", "patch", "delete"},
    ("rbac.authorization.k8s.io", "rolebindings"): {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    },
    ("monitoring.coreos.com", "prometheusrules"): {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    },
    ("", "configmaps"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
EXPECTED_CLUSTER = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
    ("", "namespaces"): {"get", "list", "watch"},
    ("monitoring.coreos.com", "prometheuses"): {"list", "watch"},
    ("monitoring.coreos.com", "servicemonitors"): {"list", "watch"},
}


@pytest.fixture(scope="module")
def defaults(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(CHART, namespace="monitoring")


def test_every_object_carries_the_recommended_labels(helm: Helm) -> None:
    """Every object, in the defaults and in the variant that renders the most of them."""
    namespaced = CHARTS / CHART / "ci" / "namespaced-values.yaml"
    objects = helm.template(CHART, namespace="monitoring") + helm.template(
        CHART, namespace="monitoring", values_file=namespaced
    )
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']} {obj['metadata']['name']}"
        # The CRD keeps the name of its source in manifests/crds (it names the resource type).
        name = "modelmonitor" if obj["kind"] == "CustomResourceDefinition" else "monitoring"
        assert labels.get("app.kubernetes.io/name") == name, where
        assert labels.get("app.kubernetes.io/instance") == "monitoring", where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/version") == "0.1.0", where
        assert labels.get("helm.sh/chart") == "monitoring-0.1.0", where
        assert labels.get("app.kubernetes.io/component") in {
            "operator",
            "reports",
            "reports-ui",
            "crd",
        }, where


def permissions(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container["env"]}


def test_defaults_render_the_operator_its_crd_rbac_and_monitoring(
    defaults: list[dict[str, Any]],
) -> None:
    assert kinds(defaults) == [
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        *["ValidatingAdmissionPolicy"] * 6,
        *["ValidatingAdmissionPolicyBinding"] * 6,
    ]


def test_admission_policies_follow_the_api_server_and_the_value(helm: Helm) -> None:
    """Rendered where the API server serves them (helm install asks it); an older cluster, or
    `helm template` without --api-versions, gets none, and the value turns them off."""
    served = helm.template(CHART)
    older = helm.template(CHART, api_versions=())
    off = helm.template(CHART, {"admissionPolicy": {"enabled": False}})
    assert kinds(served).count("ValidatingAdmissionPolicy") == 6
    for objects in (older, off):
        assert not {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} & set(
            kinds(objects)
        )


def test_admission_policies_concern_the_operator_and_its_drift_image(helm: Helm) -> None:
    values = {
        "serviceAccount": {"name": "mm"},
        "driftJob": {"image": {"repository": "registry.example/drift", "tag": "9"}},
        "kubePrometheusStack": {"dashboardLabel": {"dashboards": "grafana"}},
    }
    objects = helm.template(CHART, values, namespace="monitoring")
    policies = {
        o["metadata"]["name"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"
    }
    for policy in policies.values():
        (condition,) = policy["spec"]["matchConditions"]
        assert condition["expression"] == (
            'request.userInfo.username == "system:serviceaccount:monitoring:mm"'
        )
        assert policy["spec"]["failurePolicy"] == "Fail"
    bindings = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert {b["spec"]["policyName"] for b in bindings} == set(policies)
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings)
    cronjobs = expressions(policies["monitoring-operator-cronjobs"])
    assert 'c.image == "registry.example/drift:9"' in cronjobs
    configmaps = expressions(policies["monitoring-operator-configmaps"])
    assert 'object.metadata.?labels[?"dashboards"].orValue(\'\') == "grafana"' in configmaps


def expressions(policy: dict[str, Any]) -> str:
    return "\n".join(v["expression"] for v in policy["spec"]["validations"])


def test_crd_copy_in_the_chart_is_identical_to_the_source() -> None:
    """charts/monitoring/sync-crds.sh keeps files/crds/ equal to manifests/crds/."""
    source = {p.name: p.read_bytes() for p in CRD_SOURCE.glob("*.yaml")}
    copy = {p.name: p.read_bytes() for p in CRD_COPY.glob("*.yaml")}
    assert source, "manifests/crds/ holds no CRD"
    assert copy == source, "run charts/monitoring/sync-crds.sh"


def test_crd_is_rendered_from_the_source_and_kept_on_uninstall(
    defaults: list[dict[str, Any]],
) -> None:
    rendered = find(defaults, "CustomResourceDefinition")
    (source_file,) = CRD_SOURCE.glob("*.yaml")
    source = yaml.safe_load(source_file.read_text())
    assert rendered["spec"] == source["spec"]
    assert rendered["metadata"]["name"] == "modelmonitors.monitoring.mlops.dev"
    assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert source["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()


def test_crd_can_be_left_to_kubectl(helm: Helm) -> None:
    objects = helm.template(CHART, {"crds": {"install": False}})
    assert "CustomResourceDefinition" not in kinds(objects)


def test_operator_gets_its_settings_from_the_values(helm: Helm) -> None:
    objects = helm.template(
        CHART,
        {
            "operator": {"watchNamespaces": ["credit", "fraud"]},
            "driftJob": {"image": {"repository": "reg/drift", "tag": "7", "pullPolicy": "Never"}},
            "kubePrometheusStack": {
                "ruleLabels": {"release": "prom", "team": "risk"},
                "dashboardLabel": {"grafana_dashboard": "true"},
            },
        },
    )
    env = operator_env(objects)
    assert env["MODELMONITOR_NAMESPACES"] == "credit,fraud"
    assert json.loads(env["MODELMONITOR_RULE_LABELS"]) == {"release": "prom", "team": "risk"}
    assert json.loads(env["MODELMONITOR_DASHBOARD_LABEL"]) == {"grafana_dashboard": "true"}
    assert env["MODELMONITOR_DRIFT_IMAGE"] == "reg/drift:7"
    assert env["MODELMONITOR_DRIFT_IMAGE_PULL_POLICY"] == "Never"


def test_operator_defaults_match_the_contract(defaults: list[dict[str, Any]]) -> None:
    env = operator_env(defaults)
    assert env["MODELMONITOR_NAMESPACES"] == ""
    assert json.loads(env["MODELMONITOR_RULE_LABELS"]) == {"release": "kube-prometheus-stack"}
    assert json.loads(env["MODELMONITOR_DASHBOARD_LABEL"]) == {"grafana_dashboard": "1"}
    assert env["MODELMONITOR_METRICS_PORT"] == "8080"
    assert env["MODELMONITOR_HEALTH_PORT"] == "8081"
    deployment = find(defaults, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["run"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_operator_pod_is_restricted_and_only_it_mounts_the_token(
    defaults: list[dict[str, Any]],
) -> None:
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is True
    assert find(defaults, "ServiceAccount")["automountServiceAccountToken"] is False


def all_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for o in objects if o["kind"] in {"Role", "ClusterRole"} for rule in o["rules"]]


@pytest.mark.parametrize("values", [{}, {"operator": {"watchNamespaces": ["credit"]}}])
def test_rbac_has_no_wildcards_no_secrets_and_no_escalation(
    helm: Helm, values: dict[str, Any]
) -> None:
    rules = all_rules(helm.template(CHART, values))
    assert rules
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert "secrets" not in rule["resources"], rule
        assert not {"escalate", "bind", "impersonate", "update"} & set(rule["verbs"]), rule
        assert "nonResourceURLs" not in rule


def test_rbac_grants_what_the_operator_needs(defaults: list[dict[str, Any]]) -> None:
    namespaced = find(defaults, "ClusterRole", "monitoring-operator-namespaced")
    cluster = find(defaults, "ClusterRole", "monitoring-operator-cluster")
    assert permissions(namespaced) == EXPECTED_NAMESPACED
    assert permissions(cluster) == EXPECTED_CLUSTER


def test_owner_reference_enforcement_adds_only_update_on_finalizers(helm: Helm) -> None:
    objects = helm.template(CHART, {"rbac": {"ownerReferencesPermissionEnforcement": True}})
    granted = permissions(find(objects, "ClusterRole", "monitoring-operator-namespaced"))
    assert granted == {
        **EXPECTED_NAMESPACED,
        ("monitoring.mlops.dev", "modelmonitors/finalizers"): {"update"},
    }


def test_every_rbac_rule_says_why() -> None:
    """Each rule in templates/rbac.yaml is preceded by a comment giving its purpose."""
    lines = (CHARTS / CHART / "templates" / "rbac.yaml").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert starts
    for index in starts:
        assert lines[index - 1].strip().startswith("#"), f"rule at line {index + 1} says not why"


def test_cluster_wide_by_default_and_per_namespace_when_listed(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    bindings = {b["roleRef"]["name"] for b in defaults if b["kind"] == "ClusterRoleBinding"}
    assert bindings == {"monitoring-operator-namespaced", "monitoring-operator-cluster"}
    assert "RoleBinding" not in kinds(defaults)

    objects = helm.template(CHART, {"operator": {"watchNamespaces": ["credit", "fraud"]}})
    cluster_bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert [b["roleRef"]["name"] for b in cluster_bindings] == ["monitoring-operator-cluster"]
    role_bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["credit", "fraud"]
    for binding in role_bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "monitoring-operator-namespaced",
        }
        assert binding["subjects"][0]["namespace"] == "credit"


def test_service_monitor_scrapes_the_operator_metrics_port(defaults: list[dict[str, Any]]) -> None:
    monitor = find(defaults, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = find(defaults, "Service")
    assert service["spec"]["ports"][0]["name"] == "metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_operator_alerts_carry_severity_summary_and_runbook(
    defaults: list[dict[str, Any]],
) -> None:
    rule = find(defaults, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"ModelMonitorOperatorDown", "ModelMonitorReconcileErrors"}
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["runbook_url"].endswith(f"#{name.lower()}")
    assert 'job="monitoring-operator"' in alerts["ModelMonitorOperatorDown"]["expr"]


def test_operator_rules_pass_promtool(defaults: list[dict[str, Any]], tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool (Debian package prometheus) is needed to check the rules")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(find(defaults, "PrometheusRule")["spec"]))
    completed = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS: 2 rules found" in completed.stdout


def test_report_volume_is_optional(defaults: list[dict[str, Any]], helm: Helm) -> None:
    assert "PersistentVolumeClaim" not in kinds(defaults)
    objects = helm.template(
        CHART,
        {"reports": {"persistence": {"enabled": True, "size": "5Gi"}}},
        namespace="monitoring",
    )
    claim = find(objects, "PersistentVolumeClaim", "drift-reports")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "reports"
    assert claim["metadata"]["namespace"] == "monitoring"  # the release namespace by default


def test_report_claims_are_created_where_the_monitors_run(helm: Helm) -> None:
    """A drift CronJob runs in its monitor's namespace and can only mount a claim from there."""
    persistence = {"enabled": True, "namespaces": ["credit", "fraud"]}
    objects = helm.template(CHART, {"reports": {"persistence": persistence}})
    claims = [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert sorted((c["metadata"]["namespace"], c["metadata"]["name"]) for c in claims) == [
        ("credit", "drift-reports"),
        ("fraud", "drift-reports"),
    ]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"watchNamespace": ["x"]}}, "watchNamespace"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "watchNamespaces"),
        ({"kubePrometheusStack": {"ruleLabels": {"release": 1}}}, "ruleLabels"),
        ({"kubePrometheusStack": {"dashboardLabel": {"grafana_dashboard": 1}}}, "dashboardLabel"),
        ({"driftJob": {"image": {"pullPolicy": "Sometimes"}}}, "pullPolicy"),
        ({"crds": {"install": "yes"}}, "install"),
        ({"reports": {"persistence": {"namespaces": ["Credit"]}}}, "namespaces"),
        ({"operator": {"securityContext": {"readOnlyRootFilesystm": True}}}, "readOnlyRoot"),
        ({"operator": {"podSecurityContext": {"runAsNonRot": True}}}, "runAsNonRot"),
        ({"operator": {"extraEnv": [{"name": "A", "valu": "1"}]}}, "valu"),
        ({"operator": {"tolerations": [{"efect": "NoSchedule"}]}}, "efect"),
    ],
)
def test_values_schema_rejects_typos_and_bad_types(
    helm: Helm, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmError, match=complaint):
        helm.template(CHART, values)
