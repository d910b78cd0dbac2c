"""What the end-to-end tests drive, on either path, and which path a cluster gets.

`Stack` is the surface the tests use. `PodStack` (demo.podstack) lets the cluster's pods run
the API, the operator and the drift jobs (the local node, kind); `LocalStack` (demo.stack) runs
them as processes next to a control plane without nodes (`make demo`'s fast path). The tests
are the same for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from demo.podstack import Images, PodStack, images_from_env
from demo.stack import DriftRun, LocalStack, PredictionLogCounts
from localkube.kube import Kube
from localservers.prometheus import PrometheusApi
from localservers.webhook import WebhookReceiver

__all__ = [
    "ApiEndpoint",
    "OperatorEndpoint",
    "Stack",
    "stack_for",
]


class ApiEndpoint(Protocol):
    """Where the credit API answers, from this machine."""

    @property
    def url(self) -> str: ...


class OperatorEndpoint(Protocol):
    """Where the operator's metrics are, from this machine."""

    @property
    def metrics_url(self) -> str: ...


class Stack(Protocol):
    """The product, started and driven step by step (see LocalStack and PodStack)."""

    @property
    def kube(self) -> Kube: ...

    @property
    def api(self) -> ApiEndpoint | None: ...

    @property
    def operator(self) -> OperatorEndpoint | None: ...

    @property
    def prometheus(self) -> PrometheusApi | None: ...

    @property
    def webhook(self) -> WebhookReceiver | None: ...

    def install_charts(self) -> None: ...

    def start_api(self) -> ApiEndpoint: ...

    def start_operator(self) -> OperatorEndpoint: ...

    def start_reports_ui(self) -> str:
        """The Evidently UI over the reports claim; its URL on this machine."""

    def apply_monitor(self, overrides: Mapping[str, Any] = ...) -> dict[str, Any]: ...

    def wait_monitor_ready(self, name: str = ..., timeout: float = ...) -> dict[str, Any]: ...

    def monitor(self, name: str = ...) -> dict[str, Any] | None: ...

    def prometheus_rule(self) -> dict[str, Any]: ...

    def start_observability(self) -> PrometheusApi: ...

    def send_traffic(self, count: int, *, drifted: bool = False) -> list[dict[str, Any]]: ...

    def send_applications(self, batch: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def send_feedback(
        self, predictions: Sequence[dict[str, Any]], outcomes: Sequence[str]
    ) -> int: ...

    def prediction_log_counts(self) -> PredictionLogCounts:
        """Records written, dropped and queued by every API process, added up."""

    def wait_prediction_log_flushed(self, expected: int, timeout: float = ...) -> None: ...

    def restart_store(self, down_for: float) -> None:
        """Take the prediction store down for a while (at least `down_for` where it can)."""

    def stored_predictions(self) -> int:
        """The prediction records in the store, counted by the database."""

    def run_drift_job(self, *, scheduled: bool = False, monitor: str = ...) -> DriftRun: ...

    def inject_faults(self, on: bool) -> None:
        """Make the API fail for real, or recover: the fault switch on the process path, a
        store outage (feedback answered 503) on the pod path."""

    def restart_operator(self, *, kill: bool) -> OperatorEndpoint: ...

    def refresh_rules(self) -> None: ...

    def delete_monitor(self) -> None: ...

    def uninstall_charts(self) -> None: ...

    def stop(self) -> None: ...


def stack_for(
    kube: Kube,
    work_dir: Path,
    *,
    local_database_url: Callable[[], str],
    local_drift_image: Callable[[], str],
    local_store_restart: Callable[[float], None] | None = None,
    images: Callable[[], Images] = images_from_env,
) -> Stack:
    """The end-to-end scenario's stack: pods where the cluster runs them (the local node, kind),
    processes beside a control plane without nodes.

    The process path's PostgreSQL database and podman-built drift image are only asked for
    there; the pod path gets its images from `images` (built and imported into the local node,
    or loaded into kind beforehand).
    """
    if not kube.runs_pods:
        return LocalStack(
            kube,
            work_dir,
            database_url=local_database_url(),
            drift_runner="podman",
            drift_image=local_drift_image(),
            fault_injection=True,
            store_restart=local_store_restart,
        )
    return PodStack(kube, work_dir, images=images())
