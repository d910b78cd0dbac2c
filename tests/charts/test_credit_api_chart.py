"""Behaviour of charts/credit-api, read from `helm template` output."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import yaml

from credit_api.config import Settings

from .charttools import CHARTS, Helm, HelmError, find, kinds

CHART = "credit-api"


@pytest.fixture(scope="module")
def defaults(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(CHART)


def api_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "api")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_defaults_render_the_api_its_database_and_its_monitoring(
    defaults: list[dict[str, Any]],
) -> None:
    assert kinds(defaults) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
        "StatefulSet",
    ]


def test_every_object_carries_the_recommended_labels(defaults: list[dict[str, Any]]) -> None:
    for obj in defaults:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "credit-api"
        assert labels["app.kubernetes.io/instance"] == "credit-api"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["helm.sh/chart"] == "credit-api-0.1.0"
        assert labels["app.kubernetes.io/component"] in {"api", "database"}


def test_a_release_named_after_the_chart_gives_the_contract_names(
    defaults: list[dict[str, Any]],
) -> None:
    """Service credit-api (the scrape job and the ModelMonitor target), port http on 8000."""
    service = find(defaults, "Service", "credit-api")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"


def test_other_release_names_are_prefixed(helm: Helm) -> None:
    objects = helm.template(CHART, release="scoring")
    assert find(objects, "Deployment")["metadata"]["name"] == "scoring-credit-api"
    assert find(objects, "StatefulSet")["metadata"]["name"] == "scoring-credit-api-postgresql"


def test_names_are_cut_to_63_characters_and_stay_distinct(helm: Helm) -> None:
    # Helm allows release names of up to 53 characters; with "-credit-api" that makes 64.
    release = "a-long-release-name-for-the-credit-scoring-api-in-pro"
    objects = helm.template(CHART, release=release)
    assert len(find(objects, "Deployment")["metadata"]["name"]) == 63
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert all(len(name) <= 63 and not name.endswith("-") for _, name in names)
    services = [name for kind, name in names if kind == "Service"]
    assert len(set(services)) == 2
    assert any(name.endswith("-postgresql") for name in services)


def test_the_api_runs_one_worker_per_pod_and_scales_by_replicas(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    deployment = find(defaults, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert api_container(defaults)["args"] == ["serve"]
    assert "HorizontalPodAutoscaler" not in kinds(defaults)

    scaled = helm.template(CHART, {"autoscaling": {"enabled": True, "maxReplicas": 9}})
    assert "replicas" not in find(scaled, "Deployment")["spec"]
    hpa = find(scaled, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] == 9


def test_pods_follow_the_restricted_pod_security_standard(defaults: list[dict[str, Any]]) -> None:
    for workload in ("Deployment", "StatefulSet"):
        pod = find(defaults, workload)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert "resources" in container


def test_the_read_only_api_container_writes_to_an_empty_dir_on_tmp(
    defaults: list[dict[str, Any]],
) -> None:
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    assert {"name": "tmp", "mountPath": "/tmp"} in api_container(defaults)["volumeMounts"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity in binary units (what the chart's values take) as bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_the_spool_is_an_empty_dir_larger_than_the_apps_cap(
    defaults: list[dict[str, Any]],
) -> None:
    """The kubelet evicts a pod whose emptyDir passes its limit, and deletes what it holds:
    the app stops writing to its spool below it."""
    container = api_container(defaults)
    env = env_of(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["CREDIT_API_LOG_SPOOL_DIR"] == mounts["prediction-log-spool"]
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "prediction-log-spool")
    cap = Settings(log_spool_max_bytes=env["CREDIT_API_LOG_SPOOL_MAX_BYTES"]).log_spool_max_bytes
    assert cap == 256 * 1024 * 1024
    assert quantity_bytes(volume["emptyDir"]["sizeLimit"]) >= 1.25 * cap
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("size", ["64Mi", "1Gi", "500Ki"])
def test_the_spool_volume_follows_its_cap(helm: Helm, size: str) -> None:
    objects = helm.template(CHART, {"predictionLogSpool": {"maxSize": size}})
    pod = find(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "prediction-log-spool")
    cap = Settings(
        log_spool_max_bytes=env_of(api_container(objects))["CREDIT_API_LOG_SPOOL_MAX_BYTES"]
    )
    assert cap.log_spool_max_bytes == quantity_bytes(size)
    assert quantity_bytes(volume["emptyDir"]["sizeLimit"]) >= 1.25 * quantity_bytes(size)


def test_the_spool_may_live_on_a_claim_that_outlives_the_pod(helm: Helm) -> None:
    values = {"predictionLogSpool": {"persistentVolumeClaim": {"claimName": "api-spool"}}}
    pod = find(helm.template(CHART, values), "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "prediction-log-spool")
    assert volume == {
        "name": "prediction-log-spool",
        "persistentVolumeClaim": {"claimName": "api-spool"},
    }


def test_without_the_spool_nothing_is_mounted_for_it(helm: Helm) -> None:
    objects = helm.template(CHART, {"predictionLogSpool": {"enabled": False}})
    container = api_container(objects)
    assert "CREDIT_API_LOG_SPOOL_DIR" not in env_of(container)
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp"]


def test_a_pre_stop_pause_keeps_serving_while_the_pod_leaves_the_service(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    assert api_container(defaults)["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    # Before Kubernetes 1.30 there is no sleep action; the image has python3 (no sleep binary).
    completed = helm.run(
        "template", CHART, str(CHARTS / CHART), "--namespace", "credit", "--kube-version", "v1.29.0"
    )
    assert completed.returncode == 0, completed.stderr
    older = [doc for doc in yaml.safe_load_all(completed.stdout) if doc]
    command = api_container(older)["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["python3", "-c", "import time; time.sleep(5)"]
    assert "lifecycle" not in api_container(helm.template(CHART, {"preStopSleepSeconds": 0}))


def test_the_grace_period_covers_the_pause_the_requests_and_the_flush(
    defaults: list[dict[str, Any]],
) -> None:
    """preStop, then uvicorn's wait for requests in flight (the flush timeout + 5: see
    credit_api.cli), then the prediction log's flush (+1 for its thread to join), then a
    second or two to spool what the store did not take."""
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    pause = api_container(defaults)["lifecycle"]["preStop"]["sleep"]["seconds"]
    flush = Settings.model_fields["log_shutdown_timeout_seconds"].default
    assert pod["terminationGracePeriodSeconds"] >= pause + (flush + 5) + (flush + 1) + 2


def test_the_service_account_mounts_no_token(defaults: list[dict[str, Any]]) -> None:
    account = find(defaults, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_probes_use_healthz_and_readyz(defaults: list[dict[str, Any]]) -> None:
    container = api_container(defaults)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_service_monitor_scrapes_metrics_with_the_kube_prometheus_stack_label(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    monitor = find(defaults, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["credit"]}
    service = find(defaults, "Service", "credit-api")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    # The selector must not pick the PostgreSQL Service too.
    postgres = find(defaults, "Service", "credit-api-postgresql")
    assert not selector.items() <= postgres["metadata"]["labels"].items()

    relabelled = helm.template(CHART, {"serviceMonitor": {"labels": {"release": "prom"}}})
    assert find(relabelled, "ServiceMonitor")["metadata"]["labels"]["release"] == "prom"


def test_pod_disruption_budget_covers_the_api_pods(defaults: list[dict[str, Any]]) -> None:
    budget = find(defaults, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    pod_labels = find(defaults, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_network_policy_admits_only_the_monitoring_namespace_and_listed_clients(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    assert "NetworkPolicy" not in kinds(defaults)
    client = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}}
    objects = helm.template(
        CHART,
        {"networkPolicy": {"enabled": True, "monitoringNamespace": "obs", "apiClients": [client]}},
    )
    api_policy = find(objects, "NetworkPolicy", "credit-api")
    assert api_policy["spec"]["policyTypes"] == ["Ingress"]
    scrape, clients = api_policy["spec"]["ingress"]
    assert scrape["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert scrape["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert clients["from"] == [client]

    database_policy = find(objects, "NetworkPolicy", "credit-api-postgresql")
    peers = database_policy["spec"]["ingress"][0]["from"]
    allowed = [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers]
    assert allowed == ["api", "drift-job"]


def decode(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


HOST = "credit-api-postgresql.credit.svc:5432"


def test_bundled_postgresql_creates_a_url_per_role_and_the_api_uses_the_writers(
    defaults: list[dict[str, Any]],
) -> None:
    secret = find(defaults, "Secret", "credit-api-db")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    password = decode(secret, "password")
    assert len(password) == 32
    assert set(secret["data"]) == {
        "username", "password", "database",
        "owner-password", "writer-password", "reader-password",
        "owner-dsn", "writer-dsn", "reader-dsn",
    }  # fmt: skip
    for role in ("owner", "writer", "reader"):
        role_password = decode(secret, f"{role}-password")
        # Derived from the superuser's: kept with it, distinct per role, not the same secret.
        assert role_password == hashlib.sha256(f"{role}:{password}".encode()).hexdigest()
        assert decode(secret, f"{role}-dsn") == (
            f"postgresql+psycopg://credit_{role}:{role_password}@{HOST}/credit"
        )
    env = env_of(api_container(defaults))
    assert env["CREDIT_API_DATABASE_URL"] == {
        "secretKeyRef": {"name": "credit-api-db", "key": "writer-dsn"}
    }
    assert env["CREDIT_API_PORT"] == "8000"


def test_the_schema_is_migrated_by_its_owner_before_the_api_starts(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    pod = find(defaults, "Deployment")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["image"] == api_container(defaults)["image"]
    assert [*init["command"], *init["args"]] == [
        "prediction-store", "migrate", "--writer=credit_writer", "--reader=credit_reader",
    ]  # fmt: skip
    assert env_of(init) == {
        "PREDICTION_STORE_URL": {"secretKeyRef": {"name": "credit-api-db", "key": "owner-dsn"}}
    }
    assert init["securityContext"] == api_container(defaults)["securityContext"]
    # Off, or without a database Secret (SQLite): the API migrates at start, as before.
    for values in (
        {"database": {"migration": {"enabled": False}}},
        {"postgresql": {"enabled": False}, "database": {"secretName": ""}},
    ):
        pod = find(helm.template(CHART, values), "Deployment")["spec"]["template"]["spec"]
        assert "initContainers" not in pod


def test_the_keys_of_the_three_urls_must_differ(helm: Helm) -> None:
    with pytest.raises(HelmError, match="must differ"):
        helm.template(CHART, {"database": {"secretKey": "owner-dsn"}})


def test_a_given_postgresql_password_is_used_as_is(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    """What the Tiltfile passes: `helm template` cannot look up the stored password."""
    password = "Stored0Password1From2The3Cluster"
    objects = helm.template(CHART, {"postgresql": {"password": password}})
    secret = find(objects, "Secret", "credit-api-db")
    assert decode(secret, "password") == password
    writer = hashlib.sha256(f"writer:{password}".encode()).hexdigest()
    assert decode(secret, "writer-dsn") == (
        f"postgresql+psycopg://credit_writer:{writer}@{HOST}/credit"
    )
    # Passing the stored password (Tilt does from its second run on) does not roll the pods.
    annotations = find(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    default = find(defaults, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/database"] == default["checksum/database"]


def test_without_a_postgresql_password_each_render_generates_a_new_one(
    defaults: list[dict[str, Any]], helm: Helm
) -> None:
    first = decode(find(defaults, "Secret", "credit-api-db"), "password")
    second = decode(find(helm.template(CHART), "Secret", "credit-api-db"), "password")
    assert len(first) == len(second) == 32
    assert first.isalnum()
    assert second.isalnum()
    assert first != second


def test_bundled_postgresql_is_a_stateful_set_with_a_volume_claim(
    defaults: list[dict[str, Any]],
) -> None:
    statefulset = find(defaults, "StatefulSet")
    assert statefulset["spec"]["serviceName"] == "credit-api-postgresql"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("postgres:")
    env = env_of(container)
    # The password is read from a mounted file, never from the environment.
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgresql/password"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {
        "/var/lib/postgresql/data",
        "/var/run/postgresql",
        "/tmp",
        "/run/secrets/postgresql",
        "/docker-entrypoint-initdb.d",
    }
    volumes = statefulset["spec"]["template"]["spec"]["volumes"]
    password = next(v for v in volumes if v["name"] == "password")
    assert password["secret"]["secretName"] == "credit-api-db"
    # The roles script's inputs: role names in the environment, passwords as files.
    assert {i["path"] for i in password["secret"]["items"]} == {
        "password", "owner-password", "writer-password", "reader-password",
    }  # fmt: skip
    assert (env["CREDIT_DB_OWNER"], env["CREDIT_DB_WRITER"], env["CREDIT_DB_READER"]) == (
        "credit_owner", "credit_writer", "credit_reader",
    )  # fmt: skip
    initdb = next(v for v in volumes if v["name"] == "initdb")
    script = find(defaults, "ConfigMap", initdb["configMap"]["name"])
    assert set(script["data"]) == {"10-roles.sh"}
    assert find(defaults, "Service", "credit-api-postgresql")["spec"]["clusterIP"] == "None"


def test_external_database_reads_an_existing_secret(helm: Helm) -> None:
    objects = helm.template(
        CHART,
        {"postgresql": {"enabled": False}, "database": {"secretName": "ext", "secretKey": "url"}},
    )
    assert "Secret" not in kinds(objects)
    assert "StatefulSet" not in kinds(objects)
    env = env_of(api_container(objects))
    assert env["CREDIT_API_DATABASE_URL"] == {"secretKeyRef": {"name": "ext", "key": "url"}}


def test_without_any_database_the_api_falls_back_to_sqlite_in_tmp(helm: Helm) -> None:
    values = {"postgresql": {"enabled": False}, "database": {"secretName": ""}}
    objects = helm.template(CHART, values)
    env = env_of(api_container(objects))
    assert env["CREDIT_API_DATABASE_URL"].startswith("sqlite:////tmp/")


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"replicas": 3}, "replicas"),
        ({"service": {"prot": 8000}}, "prot"),
        ({"replicaCount": "two"}, "replicaCount"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"postgresql": {"persistence": {"size": "lots"}}}, "size"),
        ({"serviceMonitor": {"interval": "30 seconds"}}, "interval"),
        ({"networkPolicy": {"monitoringNamespace": "Monitoring!"}}, "monitoringNamespace"),
        ({"postgresql": {"password": 12345}}, "password"),
        ({"postgresql": {"pasword": "x"}}, "pasword"),
        ({"extraEnv": [{"name": "A", "valu": "1"}]}, "valu"),
        ({"postgresql": {"tolerations": [{"efect": "NoSchedule"}]}}, "efect"),
        ({"topologySpreadConstraints": [{"maxSkew": "one"}]}, "maxSkew"),
        ({"networkPolicy": {"apiClients": [{"namespaceSelectr": {}}]}}, "namespaceSelectr"),
        ({"predictionLogSpool": {"maxSize": "256MB"}}, "maxSize"),
        ({"predictionLogSpool": {"persistentVolumeClaim": {"name": "x"}}}, "name"),
        ({"preStopSleepSeconds": -1}, "preStopSleepSeconds"),
    ],
)
def test_values_schema_rejects_typos_and_bad_types(
    helm: Helm, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmError, match=complaint):
        helm.template(CHART, values)


def test_bundled_postgresql_needs_a_secret_name(helm: Helm) -> None:
    with pytest.raises(HelmError, match=r"database\.secretName must be set"):
        helm.template(CHART, {"database": {"secretName": ""}})
