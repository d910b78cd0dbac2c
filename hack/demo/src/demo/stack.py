"""The whole product on loopback: the steps `make demo` narrates and tests/e2e asserts.

A local control plane (or any cluster) holds the Kubernetes side: both charts installed with
helm, the store Secret, the ModelMonitor and everything the operator makes of it. The API, the
operator and the drift job run as processes here, because no kubelet runs pods: the operator
with the chart's ServiceAccount token, the drift job from the Job the CronJob produced, with
that Job's command, args and env. Prometheus scrapes the API and the operator and loads the
rule groups of the PrometheusRule the operator created; Alertmanager sends to a webhook here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import yaml

from demo import cluster, traffic
from demo.driftrun import (
    ContainerRun,
    container_run,
    container_run_from_job,
    host_argv,
    run_as_process,
    run_with_podman,
)
from demo.faults import FAULT_FILE_ENV
from demo.services import CreditApi, Operator, ReportsUi
from localkube.kube import Kube
from localservers.ports import free_port
from localservers.prometheus import AlertmanagerServer, PrometheusApi, PrometheusServer
from localservers.webhook import WebhookReceiver
from modelmonitor.naming import drift_job_name, rules_name
from prediction_store import count_predictions

APP_NAMESPACE = "credit"
MONITORING_NAMESPACE = "monitoring"
MONITOR = "credit-score"
STORE_SECRET = "credit-api-db"  # noqa: S105 - a Secret's name, not a password

# Timings sized for a run of minutes instead of days; the alert logic is the production one.
TEST_SIZED_SPEC: dict[str, Any] = {
    "drift": {
        "schedule": "* * * * *",
        "window": "1h",
        "minRows": 100,
        "reports": {"persistentVolumeClaim": "drift-reports", "keep": 5},
    },
    # Outcomes judged as soon as they arrive; enough of them for a verdict within a scenario.
    "quality": {"window": "1h", "labelDelay": "0s", "minLabelled": 100},
    "slo": {"window": "1h"},
    "alerts": {
        "for": {
            "apiDown": "15s",
            "modelNotLoaded": "15s",
            "volumeCollapse": "1m",
            "decisionRatio": "1m",
            "recordsDropped": "15s",
            "storeUnavailable": "15s",
            "driftJobFailed": "15s",
        }
    },
}

Say = Callable[[str], None]
DriftRunner = Literal["process", "podman"]

# The monitoring chart's Evidently UI (reports.ui) in the app namespace, over the reports claim.
REPORTS_UI = "monitoring-reports-ui"
REPORTS_UI_PODS = "app.kubernetes.io/instance=monitoring,app.kubernetes.io/component=reports-ui"
REPORTS_MOUNT = "/reports"


def reports_ui_values(url: str, *, create_claim: bool) -> dict[str, Any]:
    """The monitoring chart's values for a UI over the app namespace's reports claim, linked
    at `url` (where this machine reaches it: the loopback port it is given)."""
    claim = TEST_SIZED_SPEC["drift"]["reports"]["persistentVolumeClaim"]
    return {
        "reports": {
            "persistence": {
                "enabled": create_claim,
                "namespaces": [APP_NAMESPACE],
                "claimName": claim,
            },
            "ui": {"enabled": True, "externalURL": url, "pollSeconds": 1},
        }
    }


@dataclass
class DriftRun:
    """One run of the drift job: what ran, how it ended, and what it printed."""

    container: ContainerRun
    exit_code: int
    output: str
    result: dict[str, Any] = field(default_factory=dict)


class _Endpoint(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...


class _MetricsEndpoint(Protocol):
    @property
    def metrics_port(self) -> int: ...


class ClusterSteps:
    """The steps both stacks take the same way: the monitor through the Kubernetes API,
    Prometheus and Alertmanager on this machine, traffic through the API's local URL.

    Subclasses start the API and the operator (as processes or as reachable pods).
    """

    def __init__(self, kube: Kube, work_dir: Path, say: Say) -> None:
        self.kube = kube
        self.work_dir = work_dir
        self.say = say
        self._jobs_run: set[str] = set()
        # Where this machine reaches the Evidently UI, chosen before the chart is installed:
        # the chart gives it to the operator, which links each run there.
        self.reports_ui_port = free_port()
        self.reports_ui_url = f"http://127.0.0.1:{self.reports_ui_port}"
        self.prometheus: PrometheusApi | None = None
        # On this machine (the process path): the servers behind `prometheus` and alerting.
        self.prometheus_server: PrometheusServer | None = None
        self.alertmanager: AlertmanagerServer | None = None
        self.webhook: WebhookReceiver | None = None

    def start_api(self) -> _Endpoint:
        raise NotImplementedError

    def start_operator(self) -> _MetricsEndpoint:
        raise NotImplementedError

    def start_reports_ui(self) -> str:
        """The Evidently UI over the reports claim, at `reports_ui_url` (returned)."""
        raise NotImplementedError

    def wait_monitor_ready(self, name: str = MONITOR, timeout: float = 60) -> dict[str, Any]:
        return cluster.wait_for(
            self.kube,
            "modelmonitor",
            name,
            APP_NAMESPACE,
            until=lambda mm: (cluster.condition(mm, "Ready") or {}).get("status") == "True",
            timeout=timeout,
        )

    def monitor(self, name: str = MONITOR) -> dict[str, Any] | None:
        return cluster.get(self.kube, "modelmonitor", name, APP_NAMESPACE)

    def prometheus_rule(self) -> dict[str, Any]:
        return cluster.wait_for(self.kube, "prometheusrule", rules_name(MONITOR), APP_NAMESPACE)

    def refresh_rules(self) -> None:
        """Load the rule groups of every PrometheusRule in the app namespace into Prometheus."""
        assert self.prometheus_server is not None
        write_namespace_rules(self.kube, self.work_dir / "rules.yml")
        self.prometheus_server.reload()

    def start_observability(self) -> PrometheusApi:
        """Alertmanager (to a webhook here) and Prometheus with the operator's rules."""
        api, operator = self.start_api(), self.start_operator()
        self.webhook = self.webhook or WebhookReceiver().start()
        if self.alertmanager is None:
            self.alertmanager = AlertmanagerServer(self.webhook.url)
            self.alertmanager.start()
        if self.prometheus_server is None:
            rules = cluster.rules_file(self.prometheus_rule(), self.work_dir / "rules.yml")
            self.prometheus_server = PrometheusServer(
                scrape_configs(api.port, operator.metrics_port),
                [rules],
                alertmanager_url=self.alertmanager.url,
            )
            self.prometheus_server.start()
            self.prometheus = self.prometheus_server
            self.say(
                f"Prometheus at {self.prometheus_server.url}, "
                f"Alertmanager at {self.alertmanager.url}"
            )
        return self.prometheus_server

    def send_traffic(self, count: int, *, drifted: bool = False) -> list[dict[str, Any]]:
        api = self.start_api()
        batch = traffic.drifted_traffic(count) if drifted else traffic.normal_traffic(count)
        self.say(f"sending {count} {'drifted' if drifted else 'normal'} applications")
        return traffic.send(api.url, batch)

    def send_applications(self, batch: Sequence[traffic.Application]) -> list[dict[str, Any]]:
        """Score these applications through the API; returns the predictions, in order."""
        self.say(f"sending {len(batch)} applications")
        return traffic.send(self.start_api().url, batch)

    def send_feedback(self, predictions: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> int:
        """Report the outcome of each prediction (POST /api/v1/feedback), as a lender would."""
        self.say(f"reporting {len(outcomes)} outcomes ({', '.join(sorted(set(outcomes)))})")
        return traffic.send_feedback(self.start_api().url, predictions, outcomes)

    def prediction_log_counts(self) -> PredictionLogCounts:
        return prediction_log_counts(self.start_api().url)

    def wait_prediction_log_flushed(self, expected: int, timeout: float = 30) -> None:
        """Until the API's writer has written `expected` records (its own counter says so)."""
        wait_prediction_log_written(self.start_api().url, expected, timeout)


class LocalStack(ClusterSteps):
    """Start, drive and tear down the product on this machine. Every step is idempotent."""

    def __init__(
        self,
        kube: Kube,
        work_dir: Path,
        *,
        database_url: str | None = None,
        say: Say = lambda _: None,
        drift_runner: DriftRunner = "process",
        drift_image: str | None = None,
        fault_injection: bool = False,
        store_restart: Callable[[float], None] | None = None,
    ) -> None:
        """`drift_runner`: run the drift job's command here, or its image (`drift_image`)
        with podman. `fault_injection`: serve the API with the fault switch (demo.faults).
        `store_restart(down_for)`: stop the database behind `database_url` for that many
        seconds and start it again (only the store-restart step needs it)."""
        super().__init__(kube, work_dir, say)
        self.database_url = database_url or f"sqlite:///{work_dir / 'predictions.db'}"
        self.drift_runner = drift_runner
        self.drift_image = drift_image
        self.fault_file = work_dir / "fault" if fault_injection else None
        self._store_restart = store_restart
        self.api: CreditApi | None = None
        self.operator: Operator | None = None
        self.reports_ui: ReportsUi | None = None

    # --- the Kubernetes side -------------------------------------------------------------

    def install_charts(self) -> None:
        self.say(
            "helm install monitoring charts/monitoring (the operator, its CRD and RBAC, the"
            " Evidently UI)"
        )
        # The UI goes to the app namespace, where the monitor's reports claim is.
        self.kube.kubectl("create", "namespace", APP_NAMESPACE, check=False)
        # No claim here: the drift job and the UI run as processes, the volume is a directory.
        values = reports_ui_values(self.reports_ui_url, create_claim=False)
        if self.drift_image is not None:
            values["driftJob"] = {"image": cluster.image_values(self.drift_image)}
        cluster.install_chart(self.kube, "monitoring", "monitoring", MONITORING_NAMESPACE, values)
        self.say(f"Secret {STORE_SECRET}: the prediction store's URL ({self.database_url})")
        cluster.create_store_secret(self.kube, APP_NAMESPACE, STORE_SECRET, self.database_url)
        self.say(
            "helm install credit-api charts/credit-api (the API, its Service and ServiceMonitor)"
        )
        cluster.install_chart(
            self.kube, "credit-api", "credit-api", APP_NAMESPACE, {"postgresql": {"enabled": False}}
        )

    def operator_container(self) -> ContainerRun:
        """The operator container as the chart's Deployment defines it (env, ServiceAccount)."""
        deployments = json.loads(
            self.kube.kubectl(
                "get",
                "deployments",
                "-n",
                MONITORING_NAMESPACE,
                "-o",
                "json",
                "-l",
                "app.kubernetes.io/instance=monitoring",
            ).stdout
        )["items"]
        if len(deployments) != 1:
            raise RuntimeError(f"expected the chart's one Deployment, found {len(deployments)}")
        return container_run(
            deployments[0]["spec"]["template"]["spec"],
            MONITORING_NAMESPACE,
            lambda name, key: cluster.read_secret(self.kube, MONITORING_NAMESPACE, name, key),
        )

    def apply_monitor(self, overrides: Mapping[str, Any] = TEST_SIZED_SPEC) -> dict[str, Any]:
        self.say(
            f"kubectl apply -f manifests/examples/credit-score-monitor.yaml (-n {APP_NAMESPACE})"
        )
        cluster.apply(self.kube, cluster.example_monitor(overrides), APP_NAMESPACE)
        return self.wait_monitor_ready()

    # --- processes -----------------------------------------------------------------------

    def start_api(self) -> CreditApi:
        if self.api is None:
            if self.fault_file is None:
                api = CreditApi(self.database_url, self.work_dir)
            else:
                api = CreditApi(
                    self.database_url,
                    self.work_dir,
                    extra_env={FAULT_FILE_ENV: str(self.fault_file)},
                    app_factory="demo.faults:create_app",
                )
            self.api = api.start()
            self.say(f"credit API at {self.api.url} (docs: {self.api.url}/docs)")
        return self.api

    def start_operator(self) -> Operator:
        if self.operator is None:
            container = self.operator_container()
            account = container.service_account
            kubeconfig = self.kube.service_account_kubeconfig(MONITORING_NAMESPACE, account)
            self.operator = Operator(kubeconfig, self.work_dir, settings=container.env).start()
            self.say(f"operator running as ServiceAccount {MONITORING_NAMESPACE}/{account}")
        return self.operator

    def start_reports_ui(self) -> str:
        """The chart's UI Deployment as processes: its init container's command (which creates
        the workspace), then its container's, the claim a directory here, on loopback."""
        if self.reports_ui is None:
            deployment = cluster.get(self.kube, "deployment", REPORTS_UI, APP_NAMESPACE)
            if deployment is None:
                raise LookupError(f"deployment {APP_NAMESPACE}/{REPORTS_UI} does not exist")
            pod = deployment["spec"]["template"]["spec"]
            volumes = {REPORTS_MOUNT: self.work_dir / "reports"}
            no_secrets = _no_secrets(REPORTS_UI)
            prepare = container_run(
                {"containers": pod["initContainers"]}, APP_NAMESPACE, no_secrets
            )
            subprocess.run(host_argv(prepare, volumes), check=True, capture_output=True, timeout=60)
            for directory in (self.work_dir / "reports").rglob("*"):
                if directory.is_dir():  # the drift image's non-root user writes there (podman)
                    directory.chmod(0o777)
            ui = container_run(pod, APP_NAMESPACE, no_secrets)
            argv = host_argv(ui, volumes)
            # The pod listens on every address of its own network; here, loopback only.
            argv[argv.index("--host") + 1] = "127.0.0.1"
            argv[argv.index("--port") + 1] = str(self.reports_ui_port)
            self.reports_ui = ReportsUi(argv, self.reports_ui_port, self.work_dir, ui.env).start()
            self.say(f"Evidently UI at {self.reports_ui.url} (the runs of every monitor)")
        return self.reports_ui.url

    def restart_operator(self, *, kill: bool) -> Operator:
        """Stop the operator (SIGKILL when `kill`, as a crash would) and start a new one."""
        if self.operator is not None:
            if kill:
                self.operator.process.kill()
            else:
                self.operator.stop()
            self.operator = None
        return self.start_operator()

    # --- traffic and drift runs ------------------------------------------------------------

    def restart_store(self, down_for: float) -> None:
        """Stop the prediction store, keep it down for `down_for` seconds, start it again."""
        if self._store_restart is None:
            raise RuntimeError("this stack was not given a way to restart its store")
        self.say(f"stopping the prediction store for {down_for:.0f}s")
        self._store_restart(down_for)

    def stored_predictions(self) -> int:
        """How many prediction records the store holds (counted in the database itself)."""
        return count_predictions(self.database_url)

    def run_drift_job(self, *, scheduled: bool = False, monitor: str = MONITOR) -> DriftRun:
        """Run the drift job from a Job of the operator's CronJob, as a kubelet would.

        `scheduled`: wait for the Job the CronJob controller creates on schedule; otherwise
        create one now (`kubectl create job --from=cronjob/...`). The Job is deleted after its
        run: without a kubelet it would stay active forever, and the CronJob's Forbid policy
        would never schedule the next.
        """
        cronjob = drift_job_name(monitor)
        if scheduled:
            self.say(f"waiting for the CronJob controller to create the next Job of {cronjob}")
            job = self._wait_scheduled_job(cronjob)
        else:
            name = f"{cronjob}-{uuid.uuid4().hex[:6]}"
            job = cluster.create_job_from_cronjob(self.kube, APP_NAMESPACE, cronjob, name)
        name = job["metadata"]["name"]
        self._jobs_run.add(name)
        container = container_run_from_job(
            job, lambda secret, key: cluster.read_secret(self.kube, APP_NAMESPACE, secret, key)
        )
        self.say(f"drift job {name}: {' '.join(container.argv)}")
        volumes = {
            path: self.work_dir / "reports"
            for path in container.mount_paths
            if path == REPORTS_MOUNT
        }
        if self.drift_runner == "podman":
            token_kubeconfig = self.kube.service_account_kubeconfig(
                APP_NAMESPACE, container.service_account
            )
            completed = run_with_podman(
                container,
                api_server=self.kube.server,
                token=_token_of(token_kubeconfig),
                ca_pem=_ca_of(self.kube.kubeconfig),
                volumes=volumes,
            )
        else:
            kubeconfig = self.kube.service_account_kubeconfig(
                APP_NAMESPACE, container.service_account
            )
            completed = run_as_process(container, kubeconfig, volumes=volumes)
        self.kube.kubectl("delete", "job", name, "-n", APP_NAMESPACE, "--wait=false")
        return _drift_run(container, completed)

    def _wait_scheduled_job(self, cronjob: str, timeout: float = 150) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = json.loads(
                self.kube.kubectl("get", "jobs", "-n", APP_NAMESPACE, "-o", "json").stdout
            )["items"]
            for job in jobs:
                owners = job["metadata"].get("ownerReferences", [])
                if job["metadata"]["name"] not in self._jobs_run and any(
                    o["kind"] == "CronJob" and o["name"] == cronjob for o in owners
                ):
                    found: dict[str, Any] = job
                    return found
            time.sleep(1)
        raise TimeoutError(f"the CronJob controller created no Job for {cronjob} in {timeout:.0f}s")

    def inject_faults(self, on: bool) -> None:
        """Switch the API's injected model-loading failure on or off."""
        if self.fault_file is None:
            raise RuntimeError("this stack was started without fault injection")
        if on:
            self.fault_file.touch()
        else:
            self.fault_file.unlink(missing_ok=True)

    # --- teardown --------------------------------------------------------------------------

    def delete_monitor(self) -> None:
        self.kube.kubectl("delete", "modelmonitor", MONITOR, "-n", APP_NAMESPACE, "--wait=true")

    def uninstall_charts(self) -> None:
        cluster.uninstall_chart(self.kube, "credit-api", APP_NAMESPACE)
        cluster.uninstall_chart(self.kube, "monitoring", MONITORING_NAMESPACE)

    def stop(self) -> None:
        for server in (
            self.prometheus_server,
            self.alertmanager,
            self.reports_ui,
            self.operator,
            self.api,
        ):
            if server is not None:
                server.stop()
        if self.webhook is not None:
            self.webhook.stop()
        self.prometheus_server = self.alertmanager = self.operator = self.api = None
        self.reports_ui = None
        self.prometheus = self.webhook = None


def scrape_configs(api_port: int, operator_port: int) -> list[dict[str, Any]]:
    """What the two ServiceMonitors make kube-prometheus-stack scrape, with the same labels."""
    return [
        {
            "job_name": "credit-api",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{api_port}"],
                    "labels": {"namespace": APP_NAMESPACE, "service": "credit-api"},
                }
            ],
        },
        {
            "job_name": "monitoring-operator",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{operator_port}"],
                    "labels": {"namespace": MONITORING_NAMESPACE},
                }
            ],
        },
    ]


def write_namespace_rules(kube: Kube, path: Path) -> None:
    """The rule groups of every PrometheusRule in the app namespace, as one rule file."""
    rules = json.loads(
        kube.kubectl("get", "prometheusrules", "-n", APP_NAMESPACE, "-o", "json").stdout
    )["items"]
    groups = [group for rule in rules for group in rule["spec"]["groups"]]
    path.write_text(yaml.safe_dump({"groups": groups}))


@dataclass(frozen=True)
class PredictionLogCounts:
    """The API's own account of its prediction log (from /metrics)."""

    written: float
    dropped: float
    queued: float
    # Waiting in the spool (a store outage, a restart) for the store to come back.
    spooled: float = 0.0

    @property
    def waiting(self) -> float:
        return self.queued + self.spooled


def prediction_log_counts(api_url: str) -> PredictionLogCounts:
    return prediction_log_counts_from(httpx.get(f"{api_url}/metrics").text)


def prediction_log_counts_from(metrics: str) -> PredictionLogCounts:
    """The counts in one API process's /metrics exposition."""
    return PredictionLogCounts(
        written=_counter(metrics, "credit_api_prediction_log_written_total"),
        dropped=_counter(metrics, "credit_api_prediction_log_dropped_total"),
        queued=_counter(metrics, "credit_api_prediction_log_queue_depth"),
        spooled=_counter(metrics, "credit_api_prediction_log_spool_records"),
    )


def wait_prediction_log_written(api_url: str, expected: int, timeout: float) -> None:
    """Until the API at `api_url` says (on /metrics) it has written `expected` records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{api_url}/metrics").text
        if _counter(metrics, "credit_api_prediction_log_written_total") >= expected:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the prediction log did not reach {expected} records")


def _no_secrets(what: str) -> Callable[[str, str], str]:
    def refuse(name: str, key: str) -> str:
        raise ValueError(f"{what} reads no Secret, yet asks for {name}/{key}")

    return refuse


def _token_of(kubeconfig: Path) -> str:
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    token: str = user["token"]
    return token


def _ca_of(kubeconfig: Path) -> bytes:
    entry = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    return base64.b64decode(entry["certificate-authority-data"])


def _counter(exposition: str, name: str) -> float:
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _drift_run(container: ContainerRun, completed: subprocess.CompletedProcess[str]) -> DriftRun:
    run = DriftRun(container, completed.returncode, completed.stdout + completed.stderr)
    with contextlib.suppress(json.JSONDecodeError):
        run.result = json.loads(completed.stdout)
    return run
