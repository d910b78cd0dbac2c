"""The control plane behaves like a real cluster: schemas, garbage collection, RBAC, CronJobs."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from localkube.crds import REQUIRED_CRDS
from localkube.kube import Kube, KubectlError
from localkube.versions import KUBERNETES_VERSION
from localkube.waiting import wait_for

pytestmark = pytest.mark.cluster

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.localkube.example.dev"},
    "spec": {
        "group": "localkube.example.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 1},
                                    "colour": {"type": "string", "enum": ["red", "blue"]},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, namespace: str, spec: dict[str, object]) -> str:
    return json.dumps(
        {
            "apiVersion": "localkube.example.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def test_the_server_reports_the_pinned_version(kube: Kube) -> None:
    if not kube.local:
        pytest.skip("an existing cluster runs whatever version it runs")
    info = client.VersionApi(kube.api_client).get_code()
    assert info.git_version == KUBERNETES_VERSION
    assert kube.kubectl("version", "-o", "json").returncode == 0


def test_a_crd_schema_rejects_an_invalid_object_naming_the_field(
    kube: Kube, kube_namespace: str
) -> None:
    kube.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))
    kube.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/widgets.localkube.example.dev"
    )

    with pytest.raises(KubectlError) as rejected:
        kube.kubectl("apply", "-f", "-", input=widget("bad", kube_namespace, {"replicas": 0}))
    assert "spec.replicas" in rejected.value.stderr
    assert "greater than or equal to 1" in rejected.value.stderr

    with pytest.raises(KubectlError) as wrong_enum:
        kube.kubectl(
            "apply",
            "-f",
            "-",
            input=widget("bad", kube_namespace, {"replicas": 1, "colour": "green"}),
        )
    assert "spec.colour" in wrong_enum.value.stderr

    kube.kubectl(
        "apply", "-f", "-", input=widget("good", kube_namespace, {"replicas": 2, "colour": "red"})
    )
    stored = json.loads(
        kube.kubectl("get", "widget", "good", "-n", kube_namespace, "-o", "json").stdout
    )
    assert stored["spec"] == {"replicas": 2, "colour": "red"}


def test_garbage_collection_deletes_a_dependent_after_its_owner(
    kube: Kube, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube.api_client)
    owner = core.create_namespaced_config_map(
        kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        kube_namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="dependent", owner_references=[reference])
        ),
    )
    core.delete_namespaced_config_map("owner", kube_namespace)

    def dependent_gone() -> bool:
        names = {c.metadata.name for c in core.list_namespaced_config_map(kube_namespace).items}
        return "dependent" not in names

    wait_for(dependent_gone, timeout=60, what="the garbage collector to delete the dependent")


def test_a_service_account_token_gets_exactly_its_roles_verbs(
    kube: Kube, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube.api_client)
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    core.create_namespaced_service_account(
        kube_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader"))
    )
    rbac.create_namespaced_role(
        kube_namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="configmap-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["configmaps"], verbs=["get", "list"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="configmap-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=kube_namespace)
            ],
        ),
    )

    as_reader = config.new_client_from_config(
        config_file=str(kube.service_account_kubeconfig(kube_namespace, "reader"))
    )
    with as_reader:
        reader_core = client.CoreV1Api(as_reader)
        listed = reader_core.list_namespaced_config_map(kube_namespace)  # a 403 would raise
        assert {c.metadata.name for c in listed.items} <= {"kube-root-ca.crt"}
        with pytest.raises(ApiException) as denied:
            reader_core.create_namespaced_config_map(
                kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x"))
            )
        assert denied.value.status == 403
        assert f"system:serviceaccount:{kube_namespace}:reader" in denied.value.body
        with pytest.raises(ApiException) as elsewhere:
            reader_core.list_namespaced_config_map("default")
        assert elsewhere.value.status == 403


def test_a_token_for_a_missing_service_account_is_a_clear_error(
    kube: Kube, kube_namespace: str
) -> None:
    with pytest.raises(Exception, match=f"ServiceAccount {kube_namespace}/nobody"):
        kube.service_account_kubeconfig(kube_namespace, "nobody")


CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  schedule: "{schedule}"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: main, image: busybox, command: ["true"]}}]
"""


def test_a_job_created_from_a_cronjob_gets_its_pod(kube: Kube, kube_namespace: str) -> None:
    kube.kubectl(
        "apply",
        "-f",
        "-",
        input=CRONJOB.format(name="nightly", namespace=kube_namespace, schedule="0 3 * * *"),
    )
    kube.kubectl("create", "job", "manual", "--from=cronjob/nightly", "-n", kube_namespace)

    job = json.loads(
        kube.kubectl("get", "job", "manual", "-n", kube_namespace, "-o", "json").stdout
    )
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"

    core = client.CoreV1Api(kube.api_client)

    def job_pods() -> list[str]:
        pods = core.list_namespaced_pod(kube_namespace, label_selector="job-name=manual")
        return [p.metadata.name for p in pods.items]

    # No kubelet runs the pod, but the Job controller creating it proves the controller works.
    wait_for(job_pods, timeout=60, what="the Job controller to create the Job's pod")


@pytest.mark.slow
def test_the_cronjob_controller_starts_a_scheduled_job(kube: Kube, kube_namespace: str) -> None:
    kube.kubectl(
        "apply",
        "-f",
        "-",
        input=CRONJOB.format(name="minutely", namespace=kube_namespace, schedule="* * * * *"),
    )
    batch = client.BatchV1Api(kube.api_client)

    def scheduled_jobs() -> list[str]:
        jobs = batch.list_namespaced_job(kube_namespace).items
        return [
            j.metadata.name
            for j in jobs
            if any(
                o.kind == "CronJob" and o.name == "minutely"
                for o in j.metadata.owner_references or []
            )
        ]

    names = wait_for(scheduled_jobs, timeout=90, what="the CronJob controller's scheduled Job")
    assert names[0].startswith("minutely-")


def test_a_deleted_namespace_is_emptied_and_removed(kube: Kube) -> None:
    core = client.CoreV1Api(kube.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    core.create_namespaced_config_map(
        "doomed", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )
    core.delete_namespace("doomed")

    def gone() -> bool:
        names = {n.metadata.name for n in core.list_namespace().items}
        return "doomed" not in names

    wait_for(gone, timeout=60, what="the namespace controller to finish deleting `doomed`")


def test_new_namespaces_get_the_root_ca_and_a_default_service_account(
    kube: Kube, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube.api_client)

    def ready() -> bool:
        configmaps = {
            c.metadata.name for c in core.list_namespaced_config_map(kube_namespace).items
        }
        accounts = {
            s.metadata.name for s in core.list_namespaced_service_account(kube_namespace).items
        }
        return "kube-root-ca.crt" in configmaps and "default" in accounts

    wait_for(ready, timeout=30, what="kube-root-ca.crt and the default ServiceAccount")


PROMETHEUS_RULE = """
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {{name: rules, namespace: {namespace}}}
spec:
  groups:
    - name: example
      rules:
        - alert: Always
          expr: vector(1)
          for: {duration}
"""

SERVICE_MONITOR = """
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {{name: api, namespace: {namespace}}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  endpoints: [{{port: http, interval: 30s}}]
"""


def test_the_prometheus_operator_crds_are_installed_and_validate(
    kube: Kube, kube_namespace: str
) -> None:
    installed = set(kube.kubectl("get", "crd", "-o", "name").stdout.split())
    for name in REQUIRED_CRDS:
        assert f"customresourcedefinition.apiextensions.k8s.io/{name}" in installed

    kube.kubectl("apply", "-f", "-", input=SERVICE_MONITOR.format(namespace=kube_namespace))
    kube.kubectl(
        "apply", "-f", "-", input=PROMETHEUS_RULE.format(namespace=kube_namespace, duration="5m")
    )
    with pytest.raises(KubectlError) as rejected:
        kube.kubectl(
            "apply",
            "-f",
            "-",
            input=PROMETHEUS_RULE.format(namespace=kube_namespace, duration="five minutes"),
        )
    assert "spec.groups[0].rules[0].for" in rejected.value.stderr
