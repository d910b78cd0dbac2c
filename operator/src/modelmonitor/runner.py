"""`modelmonitor run`: kopf configured for this operator, with metrics and a health probe."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from lightkube import AsyncClient
from prometheus_client import start_http_server

from modelmonitor.handlers import CHILD_SELECTOR, Operator, register
from modelmonitor.kube import CHILD_KINDS, KubeApi
from modelmonitor.settings import Settings

ANNOTATION_PREFIX = "modelmonitor.monitoring.mlops.dev"


def _configure(kopf_settings: kopf.OperatorSettings) -> None:
    # kopf's own bookkeeping goes to annotations: the status belongs to our documented fields
    # and to the drift job, never to kopf's per-handler entries.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # One replica, no peering objects to install or grant (the chart runs a single pod).
    kopf_settings.peering.standalone = True
    kopf_settings.peering.mandatory = False
    # Events for warnings and errors only: our reconcile posts its own, meaningful ones.
    kopf_settings.posting.level = logging.WARNING
    # Re-establish watches regularly, so a silently dropped connection cannot stall the operator.
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    # List existing objects in pages: a restart with hundreds of monitors (and their dashboard
    # ConfigMaps) must not hold one giant list response in memory.
    kopf_settings.watching.chunk_size = 100
    kopf_settings.networking.request_timeout = 30
    # A per-object worker keeps the object's last event while it idles. Children are watched
    # only for deletions, and after a restart hundreds of dashboards and rule objects arrive
    # at once: short idling frees them within a second instead of five.
    kopf_settings.queueing.idle_timeout = 0.5
    # Children are watched only to notice deletions: let the API server send only ours, not
    # every ConfigMap and ServiceAccount of the cluster.
    for (api_version, _kind), plural in CHILD_KINDS.items():
        group, _, version = api_version.rpartition("/")
        kopf_settings.watching.label_selectors[group, version, plural] = CHILD_SELECTOR


def build_registry(settings: Settings) -> tuple[kopf.OperatorRegistry, Operator]:
    registry = kopf.OperatorRegistry()
    operator = Operator(settings)

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        _configure(settings)
        # HTTP/2: every call shares one TLS connection instead of a pool of handshakes.
        operator.api = KubeApi(AsyncClient(http2=True), operator.settings.field_manager)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kopf's own logins: in-cluster token, else $KUBECONFIG; no heavy client library.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    register(registry, operator)
    return registry, operator


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # One line per API call is noise; failures reach the log through the Degraded condition.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    start_http_server(settings.metrics_port)
    registry, _ = build_registry(settings)
    asyncio.run(
        kopf.operator(
            registry=registry,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=True,
            liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
        )
    )
