"""kopf handlers: glue only. Each one says when it runs and hands the work to reconcile().

- create, update (spec changes), resume (operator start): reconcile the monitor.
- a timer every `resync_seconds`: reconcile again, which repairs children edited by hand
  (a converged monitor costs six list calls and no write).
- a child deleted (watch on each child kind, filtered by our labels): reconcile its owner at
  once, so a deleted child is back within seconds.
- a Prometheus, ServiceMonitor or namespace changes what selection depends on (its selectors,
  labels, ports; not its status): reconcile every monitor soon after (one round per burst),
  which re-evaluates RulesSelected and TargetSelected.
- any monitor event: refresh the drift metrics from its status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf

from modelmonitor.kube import CHILD_KINDS, ApiCallError, KubeApi
from modelmonitor.manifests import GROUP, PLURAL, VERSION
from modelmonitor.metrics import observe_monitor
from modelmonitor.naming import MANAGED_BY
from modelmonitor.pickup import InventoryCache
from modelmonitor.reconcile import Outcome, reconcile
from modelmonitor.serial import PerKeySerial
from modelmonitor.settings import Settings

MAX_RETRY_DELAY = 60.0
CHILD_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
# Reconciles in flight at once. Each makes up to ~13 API calls, six at a time; unbounded, a
# burst of monitors (300 applied together) exhausts the client's connection pool and memory
# instead of finishing sooner.
MAX_CONCURRENT_RECONCILES = 12
# How long the monitors of a namespace being deleted are skipped before one is tried again
# (a namespace of the same name created meanwhile converges on the next try or resync).
TERMINATING_NAMESPACE_SKIP_SECONDS = 30.0
# How long a change to the selection inputs settles before the monitors are reconciled: a helm
# upgrade of kube-prometheus-stack touches a dozen ServiceMonitors at once, and makes one round.
REFRESH_DELAY_SECONDS = 1.0
# The objects whose changes can flip RulesSelected or TargetSelected: kind -> (group, version,
# plural). Only read; a missing CRD is a warning from kopf, and its later install is noticed.
SELECTION_INPUTS = {
    "Prometheus": ("monitoring.coreos.com", "v1", "prometheuses"),
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
    "Namespace": ("", "v1", "namespaces"),
}
log = logging.getLogger(__name__)


class Operator:
    """What the handlers share: the API facade and the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.api: KubeApi | None = None
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_RECONCILES)
        # Namespaces found being deleted, and when: their monitors are left alone for a while
        # (each child the namespace controller deletes would otherwise wake a reconcile).
        self._terminating: dict[str, float] = {}
        # One reconcile of a monitor at a time (its own handlers, its timer, its children's
        # watches all trigger one), so a burst of child deletions makes one or two, not six.
        self._serial = PerKeySerial()
        # The Prometheus objects and ServiceMonitors, shared by every reconcile (pickup.py).
        self.inventory = InventoryCache()
        # Every monitor seen (namespace, name), for the rounds that follow selection changes.
        self.monitors: set[tuple[str, str]] = set()
        self._refresh_wanted = asyncio.Event()

    async def reconcile(self, body: Mapping[str, Any], *, unless_queued: bool = False) -> Outcome:
        """Converge one monitor; `unless_queued`: not if a reconcile of it is already waiting."""
        if body["metadata"].get("deletionTimestamp"):
            # Being deleted (e.g. foreground cascading): re-applying would fight the collector.
            return Outcome()
        namespace = body["metadata"]["namespace"]
        key = (namespace, body["metadata"]["name"])
        if unless_queued and self._serial.queued(key):
            return Outcome()
        async with self._serial.turn(key):
            if self._namespace_skipped(namespace):
                return Outcome()
            if self.api is None:
                raise kopf.TemporaryError("the Kubernetes client is not ready yet", delay=1)

            target: Any = body  # kopf.Body or the dict a child watch fetched: both carry metadata

            def post(event_type: str, reason: str, message: str) -> None:
                kopf.event(target, type=event_type, reason=reason, message=message)

            async with self._slots:
                outcome = await reconcile(self.api, self.settings, body, post, self.inventory)
            self._note_namespace(namespace, terminating=outcome.namespace_terminating)
        return outcome

    def request_refresh(self) -> None:
        """Reconcile every monitor soon: what decides their pick-up has changed."""
        self._refresh_wanted.set()

    async def refresh_forever(self) -> None:
        """Each time a refresh is requested: wait for the burst to settle, then reconcile every
        monitor (as many at a time as reconciles may run), skipping those already queued."""
        while True:
            await self._refresh_wanted.wait()
            await asyncio.sleep(REFRESH_DELAY_SECONDS)
            self._refresh_wanted.clear()
            keys = sorted(self.monitors)
            for start in range(0, len(keys), MAX_CONCURRENT_RECONCILES):
                batch = keys[start : start + MAX_CONCURRENT_RECONCILES]
                results = await asyncio.gather(
                    *(self._refresh(*key) for key in batch), return_exceptions=True
                )
                for error in results:
                    if isinstance(error, Exception):  # a bug must not end the refreshes
                        log.error("refreshing a monitor failed", exc_info=error)

    async def _refresh(self, namespace: str, name: str) -> None:
        if self.api is None:
            return
        try:
            monitor = await self.api.get_monitor(namespace, name)
            if monitor is not None:
                await self.reconcile(monitor, unless_queued=True)
        except (ApiCallError, kopf.TemporaryError) as problem:
            # The monitor's own retries and resyncs carry on; this round was only a nudge.
            log.info("monitor %s/%s not refreshed: %s", namespace, name, problem)

    def _namespace_skipped(self, namespace: str) -> bool:
        seen = self._terminating.get(namespace)
        return seen is not None and time.monotonic() - seen < TERMINATING_NAMESPACE_SKIP_SECONDS

    def _note_namespace(self, namespace: str, *, terminating: bool) -> None:
        if not terminating:
            self._terminating.pop(namespace, None)
            return
        log.info("namespace %s is being deleted: leaving its monitors alone", namespace)
        now = time.monotonic()
        self._terminating = {
            ns: at
            for ns, at in self._terminating.items()
            if now - at < TERMINATING_NAMESPACE_SKIP_SECONDS
        }
        self._terminating[namespace] = now


def _raise_for(outcome: Outcome, retry: int) -> None:
    """Turn an outcome into kopf's retry policy: invalid specs never retry, API errors back off."""
    if outcome.invalid is not None:
        raise kopf.PermanentError(str(outcome.invalid))
    if outcome.namespace_terminating:
        return  # nothing to retry: the monitor goes with its namespace
    if outcome.problems:
        delay = min(MAX_RETRY_DELAY, 2.0 ** min(retry, 6))
        raise kopf.TemporaryError("; ".join(map(str, outcome.problems)), delay=delay)


def register(registry: kopf.OperatorRegistry, operator: Operator) -> None:
    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry, field="spec")
    async def reconcile_monitor(body: kopf.Body, retry: int, **_: Any) -> None:
        """When a monitor appears, changes or the operator starts: converge it."""
        _raise_for(await operator.reconcile(body), retry)

    resync = operator.settings.resync_seconds

    # First run one interval after the monitor is seen: the create/resume handler just ran.
    @kopf.timer(GROUP, VERSION, PLURAL, registry=registry, interval=resync, initial_delay=resync)
    async def resync_monitor(body: kopf.Body, **_: Any) -> None:
        """Every resync interval: converge again (repairs edited children; no-op otherwise)."""
        await operator.reconcile(body)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    def export_drift(body: kopf.Body, type: str | None, **_: Any) -> None:
        """On any monitor event: export its drift result as metrics, and keep track of it."""
        observe_monitor(body, deleted=type == "DELETED")
        key = (str(body.metadata.namespace), str(body.metadata.name))
        if type == "DELETED":
            operator.monitors.discard(key)
        else:
            operator.monitors.add(key)

    refresher: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry)
    async def start_refreshing(**_: Any) -> None:
        """At start: run the loop that reconciles every monitor after selection changes."""
        refresher.append(asyncio.create_task(operator.refresh_forever()))

    @kopf.on.cleanup(registry=registry)
    async def stop_refreshing(**_: Any) -> None:
        for task in refresher:
            task.cancel()

    for kind, (group, version, plural) in SELECTION_INPUTS.items():
        kopf.on.event(group, version, plural, registry=registry)(_selection_watch(operator, kind))

    for api_version, kind in CHILD_KINDS:
        group, _, version = api_version.rpartition("/")
        plural = CHILD_KINDS[(api_version, kind)]

        @kopf.on.event(
            group,
            version,
            plural,
            registry=registry,
            labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        )
        async def restore_child(
            body: kopf.Body,
            type: str | None,
            **_: Any,
        ) -> None:
            """When a child is deleted: converge its owner, which puts the child back."""
            if type != "DELETED" or operator.api is None:
                return
            for owner in body.metadata.get("ownerReferences") or []:
                if owner.get("kind") == "ModelMonitor":
                    namespace = str(body.metadata.namespace)
                    monitor = await operator.api.get_monitor(namespace, owner["name"])
                    if monitor is not None:
                        await operator.reconcile(monitor, unless_queued=True)


def _selection_watch(operator: Operator, kind: str) -> Any:
    def notice_selection_change(body: kopf.Body, type: str | None, **_: Any) -> None:
        """When a Prometheus, ServiceMonitor or namespace changes what selection depends on:
        refresh every monitor."""
        if operator.inventory.changed_by(kind, body, deleted=type == "DELETED"):
            log.info("%s %s changed: refreshing the monitors' pick-up", kind, body.metadata.name)
            operator.request_refresh()

    return notice_selection_change
