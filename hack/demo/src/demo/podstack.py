"""The product on a cluster that runs pods (the local node, kind): the steps of demo.stack,
with the pods doing the work.

Both charts are installed with the images of hack/images/build.sh (imported into the local
node's containerd here; loaded into kind by the user) and the chart's bundled PostgreSQL (on
the local node from the PostgreSQL image built here, elsewhere the official one). The API (two
replicas behind its Service), the operator and PostgreSQL run in their pods, the drift job in
the pods of the Jobs the CronJob controller makes. kube-prometheus-stack (demo.kps) scrapes
what our ServiceMonitors select and evaluates what our PrometheusRules say; its Alertmanager
sends to a webhook receiver here. The tests reach the pods through the API's Service (its
cluster address on the local node, a port-forward elsewhere) and `kubectl port-forward`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from demo import cluster, kps
from demo.driftrun import container_run_from_job
from demo.portforward import PortForward
from demo.stack import (
    APP_NAMESPACE,
    MONITOR,
    MONITORING_NAMESPACE,
    REPORTS_UI,
    REPORTS_UI_PODS,
    STORE_SECRET,
    TEST_SIZED_SPEC,
    ClusterSteps,
    DriftRun,
    PredictionLogCounts,
    Say,
    prediction_log_counts_from,
    reports_ui_values,
)
from localkube.addresses import NODE_ADDRESS
from localkube.images import podman_image_archive
from localkube.kube import Kube
from localservers.prometheus import PrometheusApi
from localservers.webhook import WebhookReceiver
from modelmonitor.naming import drift_job_name

IMAGES_ENV = "E2E_IMAGES"
# Where kube-prometheus-stack's Alertmanager (in a pod) reaches the webhook receiver here: on
# the local node, the node's bridge address; on kind, set it (the kind network's gateway).
WEBHOOK_HOST_ENV = "E2E_WEBHOOK_HOST"
DEFAULT_IMAGES_FILE = cluster.REPO_ROOT / "build" / "images.json"

API_DEPLOYMENT = "credit-api"
API_SERVICE = "credit-api"
API_REPLICAS = 2
# Scrape intervals sized for a run of minutes (the charts' defaults are 30 s).
SCRAPE_INTERVAL = "5s"
API_PODS = "app.kubernetes.io/instance=credit-api,app.kubernetes.io/component=api"
DATABASE_STATEFULSET = "credit-api-postgresql"
DATABASE_PODS = "app.kubernetes.io/instance=credit-api,app.kubernetes.io/component=database"
OPERATOR_DEPLOYMENT = "monitoring-operator"
OPERATOR_PODS = "app.kubernetes.io/instance=monitoring,app.kubernetes.io/component=operator"
# TEST_SIZED_SPEC keeps reports on this claim, which the monitoring chart creates (ReadWriteOnce,
# the default class: the drift pods and the UI's share the one node); on the local path its
# mount is a directory here.
REPORTS_CLAIM: str = TEST_SIZED_SPEC["drift"]["reports"]["persistentVolumeClaim"]
# What `kubectl create job --from=cronjob/...` puts on the Jobs it creates.
MANUAL_JOB_ANNOTATION = "cronjob.kubernetes.io/instantiate"

ROLLOUT_TIMEOUT = 300.0  # a first install pulls PostgreSQL and initialises its volume
# A PrometheusRule reaches Prometheus through the operator, a ConfigMap the kubelet syncs into
# the pod, and the config reloader.
RULES_TIMEOUT = 180.0
SCHEDULED_JOB_TIMEOUT = 180.0  # a minute's schedule, plus one slot skipped under Forbid
JOB_TIMEOUT = 300.0  # a failing run is retried once (backoffLimit 1) after a 10 s back-off


@dataclass(frozen=True)
class Images:
    """The image references the charts run (hack/images/build.sh writes them to images.json).

    ``postgres``: the bundled database's image, where the official one cannot be pulled (the
    local node); None runs the chart's default."""

    credit_api: str
    operator: str
    drift: str
    postgres: str | None = None

    def references(self) -> list[str]:
        return [
            self.credit_api,
            self.operator,
            self.drift,
            *([self.postgres] if self.postgres else []),
        ]


def images_from_json(text: str) -> Images:
    """Images from the JSON hack/images/build.sh writes: {"credit-api": ref, ...}."""
    found = json.loads(text)
    missing = sorted({"credit-api", "operator", "drift"} - set(found))
    if missing:
        raise ValueError(f"images file lacks {', '.join(missing)}")
    return Images(
        credit_api=found["credit-api"],
        operator=found["operator"],
        drift=found["drift"],
        postgres=found.get("postgres"),
    )


def images_from_env(environ: Mapping[str, str] = os.environ) -> Images:
    """Images from the file $E2E_IMAGES names, by default build/images.json."""
    path = Path(environ.get(IMAGES_ENV) or DEFAULT_IMAGES_FILE)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: build the images (bash hack/images/build.sh), load them "
            f"into the cluster, or set {IMAGES_ENV} to a file of the same shape (docs/kind.md)"
        )
    return images_from_json(path.read_text())


def ready_pods(pods: Mapping[str, Any]) -> list[str]:
    """Names of the running, ready, not terminating pods of a pod list, newest first."""
    ready = [
        pod
        for pod in pods["items"]
        if "deletionTimestamp" not in pod["metadata"]
        and pod.get("status", {}).get("phase") == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in pod["status"].get("conditions", [])
        )
    ]
    ready.sort(key=lambda pod: pod["metadata"]["creationTimestamp"], reverse=True)
    return [pod["metadata"]["name"] for pod in ready]


def container_port(deployment: Mapping[str, Any], name: str) -> int:
    """The number of the container port called `name` in a Deployment's pod template."""
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            if port.get("name") == name:
                number: int = port["containerPort"]
                return number
    raise LookupError(f"deployment {deployment['metadata']['name']} has no port named {name}")


def job_finished(job: Mapping[str, Any]) -> bool:
    """Whether the Job reached Complete or Failed (every retry spent)."""
    return any(
        c.get("type") in {"Complete", "Failed"} and c.get("status") == "True"
        for c in job.get("status", {}).get("conditions", [])
    )


def first_scheduled_job(
    jobs: Mapping[str, Any], cronjob: str, *, since: str, seen: set[str]
) -> dict[str, Any] | None:
    """The oldest Job the CronJob controller created at or after `since` (RFC 3339, UTC).

    Jobs created by hand (`kubectl create job --from`) and Jobs already looked at do not count.
    """
    scheduled = [
        job
        for job in jobs["items"]
        if job["metadata"]["name"] not in seen
        and MANUAL_JOB_ANNOTATION not in job["metadata"].get("annotations", {})
        and job["metadata"]["creationTimestamp"] >= since
        and any(
            o.get("kind") == "CronJob" and o.get("name") == cronjob
            for o in job["metadata"].get("ownerReferences", [])
        )
    ]
    if not scheduled:
        return None
    oldest: dict[str, Any] = min(scheduled, key=lambda job: job["metadata"]["creationTimestamp"])
    return oldest


def terminated_state(pod: Mapping[str, Any], container: str) -> dict[str, Any] | None:
    """The terminated state of the pod's container (exitCode, reason, ...), if it ended."""
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status.get("name") == container:
            terminated: dict[str, Any] | None = status.get("state", {}).get("terminated")
            return terminated
    return None


def last_run_pod(pods: Mapping[str, Any], container: str) -> tuple[str, int] | None:
    """(name, exit code) of the newest pod whose `container` has terminated.

    A failed run is retried in a new pod (restartPolicy Never); the newest is the Job's last
    word, and the one whose verdict the monitor's status holds.
    """
    ended = [
        (pod["metadata"]["creationTimestamp"], pod["metadata"]["name"], state)
        for pod in pods["items"]
        if (state := terminated_state(pod, container)) is not None
    ]
    if not ended:
        return None
    _, name, state = max(ended, key=lambda entry: entry[0])
    return name, int(state["exitCode"])


def drift_result(logs: str) -> dict[str, Any]:
    """The JSON verdict in a drift job's log (stdout and stderr interleaved), or {}.

    `--output json` prints one indented object; the job's own messages are single lines on
    stderr, so the object runs from a line "{" to the last line "}".
    """
    lines = logs.splitlines()
    if "{" not in lines or "}" not in lines:
        return {}
    start = lines.index("{")
    end = len(lines) - lines[::-1].index("}")
    try:
        found = json.loads("\n".join(lines[start:end]))
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def utc_timestamp(seconds: float) -> str:
    """RFC 3339 to the second, as the API server writes creationTimestamp."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ServiceApi:
    """The API's Service, as this machine reaches it: its cluster address (the local node's
    kube-proxy balances across the pods) or, elsewhere, a port-forward to one of its pods."""

    url: str
    forward: PortForward | None = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.forward is not None:
            self.forward.stop()


@dataclass(frozen=True)
class PodOperator:
    """The operator pod's metrics port behind a port-forward."""

    forward: PortForward

    @property
    def metrics_url(self) -> str:
        return f"{self.forward.url}/metrics"

    @property
    def metrics_port(self) -> int:
        return self.forward.local_port

    @property
    def pod(self) -> str:
        return self.forward.pod

    def stop(self) -> None:
        self.forward.stop()


class PodStack(ClusterSteps):
    """Start, drive and tear down the product on a real cluster. Every step is idempotent.

    Use a cluster of its own: installing starts from a clean slate, removing the monitors, the
    releases and the data a previous run of this stack left in the two namespaces.
    """

    def __init__(
        self, kube: Kube, work_dir: Path, *, images: Images, say: Say = lambda _: None
    ) -> None:
        super().__init__(kube, work_dir, say)
        self.images = images
        self.api: ServiceApi | None = None
        self.operator: PodOperator | None = None
        self.reports_ui: PortForward | None = None
        self.observability: kps.KpsEndpoints | None = None

    # --- the Kubernetes side -------------------------------------------------------------

    def install_charts(self) -> None:
        self._remove_previous_run()
        if self.kube.node_runtime is not None:
            self.say("importing the images into the node's containerd")
            self.kube.import_images(
                [podman_image_archive(ref, self.say) for ref in self.images.references()]
            )
        self.say(f"helm install monitoring charts/monitoring ({self.images.operator})")
        # The chart's Evidently UI and the reports claim it serves go to the app namespace.
        self.kube.kubectl("create", "namespace", APP_NAMESPACE, check=False)
        cluster.install_chart(
            self.kube,
            "monitoring",
            "monitoring",
            MONITORING_NAMESPACE,
            {
                "operator": {"image": cluster.image_values(self.images.operator)},
                "driftJob": {"image": cluster.image_values(self.images.drift)},
                "serviceMonitor": {"interval": SCRAPE_INTERVAL},
                **reports_ui_values(self.reports_ui_url, create_claim=True),
            },
            wait=True,
        )
        self.say(f"helm install credit-api charts/credit-api ({self.images.credit_api})")
        values: dict[str, Any] = {
            "image": cluster.image_values(self.images.credit_api),
            "replicaCount": API_REPLICAS,
            "serviceMonitor": {"interval": SCRAPE_INTERVAL},
        }
        if self.images.postgres is not None:
            values["postgresql"] = {"image": cluster.image_values(self.images.postgres)}
        cluster.install_chart(
            self.kube, "credit-api", "credit-api", APP_NAMESPACE, values, wait=True
        )

    def start_observability(self) -> PrometheusApi:
        """kube-prometheus-stack, alerting a webhook here; its Prometheus, once it scrapes the
        API's pods and the operator and has loaded the monitor's rules."""
        if self.prometheus is None:
            host = NODE_ADDRESS if self.kube.node_runtime is not None else _webhook_host()
            self.webhook = self.webhook or WebhookReceiver(host).start()
            self.say(
                "helm install kube-prometheus-stack (prometheus-operator, Prometheus, "
                "Alertmanager, kube-state-metrics)"
            )
            kps.install(self.kube, self.webhook.url, say=self.say)
            self.observability = kps.forward(self.kube, self.work_dir)
            prometheus = self.prometheus = self.observability.prometheus
            self.say(
                f"Prometheus at {self.observability.prometheus_forward.url}, Alertmanager at "
                f"{self.observability.alertmanager_url}"
            )
            prometheus.wait_for(
                'up{job="credit-api"} == 1',
                lambda result: len(result) == API_REPLICAS,
                timeout=180,
            )
            self.refresh_rules()
            return prometheus
        return self.prometheus

    def refresh_rules(self) -> None:
        """Until Prometheus has loaded every PrometheusRule of the app namespace (the operator
        renders them into its rule files; the config reloader tells Prometheus)."""
        assert self.prometheus is not None
        prometheus = self.prometheus
        wanted = {
            group["name"]
            for rule in json.loads(
                self.kube.kubectl(
                    "get", "prometheusrules", "-n", APP_NAMESPACE, "-o", "json"
                ).stdout
            )["items"]
            for group in rule["spec"]["groups"]
        }

        def loaded() -> bool:
            return wanted <= {group["name"] for group in prometheus.rule_groups()}

        deadline = time.monotonic() + RULES_TIMEOUT
        while not loaded():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus did not load the rule groups {sorted(wanted)}")
            time.sleep(2)

    def apply_monitor(self, overrides: Mapping[str, Any] = TEST_SIZED_SPEC) -> dict[str, Any]:
        cluster.apply(self.kube, cluster.example_monitor(overrides), APP_NAMESPACE)
        return self.wait_monitor_ready()

    # --- the pods, reached through port-forwards -----------------------------------------

    def start_api(self) -> ServiceApi:
        if self.api is None:
            self._rolled_out(APP_NAMESPACE, API_DEPLOYMENT, API_PODS, "http")
            service = cluster.get(self.kube, "service", API_SERVICE, APP_NAMESPACE)
            assert service is not None
            port = service["spec"]["ports"][0]["port"]
            if self.kube.node_runtime is not None:
                api = ServiceApi(f"http://{service['spec']['clusterIP']}:{port}")
            else:
                forward = PortForward(
                    self.kube, APP_NAMESPACE, f"service/{API_SERVICE}", port, self.work_dir
                ).start()
                api = ServiceApi(forward.url, forward)
            try:
                _wait_http_ok(f"{api.url}/readyz", timeout=60)
            except TimeoutError:
                api.stop()
                raise
            self.api = api
            self.say(f"credit API Service at {self.api.url}")
        return self.api

    def prediction_log_counts(self) -> PredictionLogCounts:
        """The prediction logs of every API pod, added up (each pod's /metrics, read through
        the API server's proxy to the pod)."""
        pods = json.loads(
            self.kube.kubectl(
                "get", "pods", "-n", APP_NAMESPACE, "-l", API_PODS, "-o", "json"
            ).stdout
        )
        total = PredictionLogCounts(0.0, 0.0, 0.0)
        for name in ready_pods(pods):
            metrics = self.kube.kubectl(
                "get", "--raw", f"/api/v1/namespaces/{APP_NAMESPACE}/pods/{name}:8000/proxy/metrics"
            ).stdout
            counts = prediction_log_counts_from(metrics)
            total = PredictionLogCounts(
                total.written + counts.written,
                total.dropped + counts.dropped,
                total.queued + counts.queued,
                total.spooled + counts.spooled,
            )
        return total

    def wait_prediction_log_flushed(self, expected: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (counts := self.prediction_log_counts()).written < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API pods wrote {counts.written} of {expected} records")
            time.sleep(0.5)

    def start_operator(self) -> PodOperator:
        if self.operator is None:
            pod, port = self._rolled_out(
                MONITORING_NAMESPACE, OPERATOR_DEPLOYMENT, OPERATOR_PODS, "metrics"
            )
            self.operator = self._forward_operator(pod, port)
        return self.operator

    def start_reports_ui(self) -> str:
        """The UI's Service behind a port-forward on `reports_ui_port`, the port the chart was
        told (reports.ui.externalURL): the links in statuses and alerts open here."""
        if self.reports_ui is None:
            _, port = self._rolled_out(APP_NAMESPACE, REPORTS_UI, REPORTS_UI_PODS, "http")
            forward = PortForward(
                self.kube,
                APP_NAMESPACE,
                f"service/{REPORTS_UI}",
                port,
                self.work_dir,
                local_port=self.reports_ui_port,
            ).start()
            try:
                _wait_http_ok(f"{forward.url}/api/version", timeout=60)
            except TimeoutError:
                forward.stop()
                raise
            self.reports_ui = forward
            self.say(f"Evidently UI Service at {forward.url}")
        return self.reports_ui.url

    def restart_operator(self, *, kill: bool) -> PodOperator:
        """Delete the operator's pod (at once, without grace, when `kill`, as a node loss
        would) and wait for the one its Deployment starts instead.

        The new pod's metrics come on the same local port, so Prometheus keeps its target.
        """
        old = self.start_operator()
        force = ["--grace-period=0", "--force", "--wait=false"] if kill else ["--wait=true"]
        self.kube.kubectl("delete", "pod", old.pod, "-n", MONITORING_NAMESPACE, *force)
        old.stop()
        self.operator = None
        pod = self._wait_ready_pod(MONITORING_NAMESPACE, OPERATOR_PODS, exclude={old.pod})
        deployment = self._deployment(MONITORING_NAMESPACE, OPERATOR_DEPLOYMENT)
        self.operator = self._forward_operator(
            pod, container_port(deployment, "metrics"), local_port=old.metrics_port
        )
        return self.operator

    # --- traffic and drift runs ------------------------------------------------------------

    def _database_rolled_out(self) -> None:
        self.kube.kubectl(
            "rollout",
            "status",
            f"statefulset/{DATABASE_STATEFULSET}",
            "-n",
            APP_NAMESPACE,
            f"--timeout={ROLLOUT_TIMEOUT:.0f}s",
            timeout=ROLLOUT_TIMEOUT + 30,
        )

    def restart_store(self, down_for: float) -> None:
        """Delete the PostgreSQL pod; its StatefulSet starts a new one on the same volume.

        How long the store stays down is the pod's shutdown and start-up, not `down_for`.
        """
        self.say(f"deleting the pod of statefulset/{DATABASE_STATEFULSET}")
        self.kube.kubectl(
            "delete", "pod", "-n", APP_NAMESPACE, "-l", DATABASE_PODS, "--wait=true", timeout=120
        )
        self._database_rolled_out()

    def stored_predictions(self) -> int:
        """The prediction rows in the bundled PostgreSQL, counted with psql in its pod."""
        count = self.kube.kubectl(
            "exec",
            "-n",
            APP_NAMESPACE,
            f"statefulset/{DATABASE_STATEFULSET}",
            "--",
            "sh",
            "-c",
            'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT count(*) FROM predictions"',
        )
        return int(count.stdout.strip())

    def run_drift_job(self, *, scheduled: bool = False, monitor: str = MONITOR) -> DriftRun:
        """Run the drift job as its Job's pod and report how the pod ended.

        `scheduled`: wait for the next Job the CronJob controller creates (one created before
        this call may have read the store before the caller's traffic); otherwise create one
        now (`kubectl create job --from=cronjob/...`). Waits until the Job is Complete or
        Failed, then reads the exit code from the terminated state of its newest pod, and that
        pod's log.
        """
        cronjob = drift_job_name(monitor)
        if scheduled:
            job = self._wait_scheduled_job(cronjob, since=utc_timestamp(time.time()))
        else:
            name = f"{cronjob}-{uuid.uuid4().hex[:6]}"
            job = cluster.create_job_from_cronjob(self.kube, APP_NAMESPACE, cronjob, name)
        name = job["metadata"]["name"]
        self._jobs_run.add(name)
        container = container_run_from_job(
            job, lambda secret, key: cluster.read_secret(self.kube, APP_NAMESPACE, secret, key)
        )
        container_name: str = job["spec"]["template"]["spec"]["containers"][0]["name"]
        self.say(f"drift job {name}: {' '.join(container.argv)}")
        cluster.wait_for(
            self.kube, "job", name, APP_NAMESPACE, until=job_finished, timeout=JOB_TIMEOUT
        )
        pods = json.loads(
            self.kube.kubectl(
                "get", "pods", "-n", APP_NAMESPACE, "-l", f"job-name={name}", "-o", "json"
            ).stdout
        )
        ended = last_run_pod(pods, container_name)
        if ended is None:
            raise RuntimeError(f"job {name} finished without a terminated {container_name} pod")
        pod, exit_code = ended
        logs = self.kube.kubectl(
            "logs", f"pod/{pod}", "-n", APP_NAMESPACE, "-c", container_name
        ).stdout
        return DriftRun(container, exit_code, logs, drift_result(logs))

    def _wait_scheduled_job(self, cronjob: str, *, since: str) -> dict[str, Any]:
        deadline = time.monotonic() + SCHEDULED_JOB_TIMEOUT
        while time.monotonic() < deadline:
            jobs = json.loads(
                self.kube.kubectl("get", "jobs", "-n", APP_NAMESPACE, "-o", "json").stdout
            )
            job = first_scheduled_job(jobs, cronjob, since=since, seen=self._jobs_run)
            if job is not None:
                return job
            time.sleep(1)
        raise TimeoutError(f"no Job of {cronjob} was scheduled in {SCHEDULED_JOB_TIMEOUT:.0f}s")

    def inject_faults(self, on: bool) -> None:
        """A real outage, as users meet one: the prediction store goes away (its StatefulSet
        scaled to no pod) and comes back (one pod, on the same volume).

        Predictions go on (their records wait in the queue and the spool), but feedback, which
        is written at once, is answered 503: the availability SLO burns for real.
        """
        replicas = "0" if on else "1"
        self.say(f"scaling statefulset/{DATABASE_STATEFULSET} to {replicas}")
        self.kube.kubectl(
            "scale",
            f"statefulset/{DATABASE_STATEFULSET}",
            "-n",
            APP_NAMESPACE,
            f"--replicas={replicas}",
        )
        if on:
            self.kube.kubectl(
                "wait", "--for=delete", "pod", "-l", DATABASE_PODS, "-n", APP_NAMESPACE,
                f"--timeout={ROLLOUT_TIMEOUT:.0f}s", timeout=ROLLOUT_TIMEOUT + 30,
            )  # fmt: skip
        else:
            self._database_rolled_out()

    def delete_api_pod(self) -> str:
        """Delete one API pod as a rolling update or a node drain does (its grace period, its
        preStop pause) and wait for its replacement to be ready; the deleted pod's name."""
        pods = json.loads(
            self.kube.kubectl(
                "get", "pods", "-n", APP_NAMESPACE, "-l", API_PODS, "-o", "json"
            ).stdout
        )
        victim = ready_pods(pods)[-1]
        self.say(f"deleting API pod {victim}")
        self.kube.kubectl("delete", "pod", victim, "-n", APP_NAMESPACE, "--wait=true", timeout=180)
        self._rolled_out(APP_NAMESPACE, API_DEPLOYMENT, API_PODS, "http")
        return victim

    def upgrade_monitoring(self, values: Mapping[str, Any]) -> None:
        """`helm upgrade monitoring` with these values over the installed ones (the operator's
        Deployment rolls out with its new settings)."""
        self.say(f"helm upgrade monitoring charts/monitoring ({json.dumps(values)})")
        cluster.helm(
            self.kube,
            "upgrade",
            "monitoring",
            str(cluster.CHARTS / "monitoring"),
            f"--namespace={MONITORING_NAMESPACE}",
            "--reuse-values",
            f"--set-json={helm_set_json(values)}",
            "--wait",
            timeout=ROLLOUT_TIMEOUT,
        )
        old = self.operator
        self.operator = None
        if old is not None:
            old.stop()
        self.start_operator()

    # --- teardown --------------------------------------------------------------------------

    def delete_monitor(self) -> None:
        self.kube.kubectl("delete", "modelmonitor", MONITOR, "-n", APP_NAMESPACE, "--wait=true")

    def uninstall_charts(self) -> None:
        """`helm uninstall` both releases, then delete what the credit-api chart keeps on
        purpose (the database Secret, `helm.sh/resource-policy: keep`, and PostgreSQL's volume),
        as a user removing the product for good does, and the reports claim this stack made."""
        cluster.uninstall_chart(self.kube, "credit-api", APP_NAMESPACE)
        cluster.uninstall_chart(self.kube, "monitoring", MONITORING_NAMESPACE)
        self._delete_kept_data(wait=False)

    def stop(self) -> None:
        """Stop the port-forwards and the webhook receiver; what runs in the cluster stays."""
        for forward in (self.observability, self.reports_ui, self.operator, self.api):
            if forward is not None:
                forward.stop()
        if self.webhook is not None:
            self.webhook.stop()
        self.observability = self.operator = self.api = self.webhook = None
        self.reports_ui = None
        self.prometheus = None

    # --- helpers ---------------------------------------------------------------------------

    def _remove_previous_run(self) -> None:
        self._delete_every_monitor()
        for release, namespace in (
            ("credit-api", APP_NAMESPACE),
            ("monitoring", MONITORING_NAMESPACE),
        ):
            cluster.helm(
                self.kube,
                "uninstall",
                release,
                f"--namespace={namespace}",
                "--wait",
                "--ignore-not-found",
            )
        # A fresh database: the scenario counts the rows of its own traffic.
        self._delete_kept_data(wait=True)

    def _delete_every_monitor(self) -> None:
        # The operator's finalizer would keep a monitor whose operator is already gone (an
        # aborted run) forever; nothing else waits on it, so it is dropped. Fails harmlessly
        # where the CRD is not installed yet.
        self.kube.kubectl(
            "delete", "modelmonitors", "--all", "-n", APP_NAMESPACE, "--wait=false", check=False
        )
        listed = self.kube.kubectl(
            "get", "modelmonitors", "-n", APP_NAMESPACE, "-o", "name", check=False
        )
        for monitor in listed.stdout.split():
            self.kube.kubectl(
                "patch",
                monitor,
                "-n",
                APP_NAMESPACE,
                "--type=merge",
                "--patch",
                '{"metadata": {"finalizers": null}}',
                check=False,
            )

    def _delete_kept_data(self, *, wait: bool) -> None:
        options = ["-n", APP_NAMESPACE, "--ignore-not-found", f"--wait={str(wait).lower()}"]
        if wait:
            options.append("--timeout=180s")
        kept = [f"secret/{STORE_SECRET}", f"pvc/{REPORTS_CLAIM}"]
        self.kube.kubectl("delete", *kept, *options, timeout=210)
        postgres_volumes = ["pvc", "-l", "app.kubernetes.io/instance=credit-api"]
        self.kube.kubectl("delete", *postgres_volumes, *options, timeout=210)

    def _deployment(self, namespace: str, name: str) -> dict[str, Any]:
        found = cluster.get(self.kube, "deployment", name, namespace)
        if found is None:
            raise LookupError(f"deployment {namespace}/{name} does not exist")
        return found

    def _rolled_out(
        self, namespace: str, deployment: str, selector: str, port_name: str
    ) -> tuple[str, int]:
        """Wait for the Deployment's rollout; its ready pod and the number of its port."""
        self.kube.kubectl(
            "rollout",
            "status",
            f"deployment/{deployment}",
            "-n",
            namespace,
            f"--timeout={ROLLOUT_TIMEOUT:.0f}s",
            timeout=ROLLOUT_TIMEOUT + 30,
        )
        port = container_port(self._deployment(namespace, deployment), port_name)
        return self._wait_ready_pod(namespace, selector), port

    def _wait_ready_pod(
        self, namespace: str, selector: str, *, exclude: Collection[str] = ()
    ) -> str:
        deadline = time.monotonic() + ROLLOUT_TIMEOUT
        while time.monotonic() < deadline:
            pods = json.loads(
                self.kube.kubectl(
                    "get", "pods", "-n", namespace, "-l", selector, "-o", "json"
                ).stdout
            )
            fresh = [name for name in ready_pods(pods) if name not in exclude]
            if fresh:
                return fresh[0]
            time.sleep(1)
        raise TimeoutError(f"no ready pod matches {selector} in {namespace}")

    def _forward_operator(
        self, pod: str, port: int, *, local_port: int | None = None
    ) -> PodOperator:
        forward = PortForward(
            self.kube, MONITORING_NAMESPACE, pod, port, self.work_dir, local_port=local_port
        ).start()
        self.say(f"operator pod {pod}, metrics at {forward.url}/metrics")
        return PodOperator(forward)


def helm_set_json(values: Mapping[str, Any], prefix: str = "") -> str:
    """Nested values as helm's --set-json `a.b=<json>` pairs (comma-separated)."""
    pairs = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs.append(helm_set_json(value, f"{path}."))
        else:
            pairs.append(f"{path}={json.dumps(value)}")
    return ",".join(pairs)


def _webhook_host() -> str:
    host = os.environ.get(WEBHOOK_HOST_ENV, "").strip()
    if not host:
        raise RuntimeError(
            f"set {WEBHOOK_HOST_ENV} to an address of this machine the cluster's pods reach "
            "(kind: the gateway of the `kind` Docker network, e.g. 172.18.0.1); "
            "kube-prometheus-stack's Alertmanager sends the alerts there"
        )
    return host


def _wait_http_ok(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer 200 in {timeout:.0f}s")
