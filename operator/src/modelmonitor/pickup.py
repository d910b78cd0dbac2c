"""RulesSelected and TargetSelected for one monitor, from an inventory of the cluster shared by
every reconcile.

The inventory (every Prometheus, every ServiceMonitor, the namespaces' labels: three
cluster-wide lists) is fetched once and reused until it is `MAX_AGE_SECONDS` old or a watch
event says it changed (`InventoryCache.changed_by`), so a burst of reconciles costs three lists,
not three per monitor. The target Service is read per reconcile (one GET). The selection
itself is pure: `selection.rules_verdict` and `selection.target_verdict`.

Neither condition is an error: without the Prometheus CRD, without a Prometheus, or without the
permission to list them, both are Unknown with that reason, and Ready/Degraded are untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from modelmonitor.kube import ApiCallError, KubeApi
from modelmonitor.selection import (
    Inventory,
    Verdict,
    prometheus_from,
    rules_verdict,
    service_from,
    service_monitor_from,
    target_verdict,
)
from modelmonitor.spec import Monitor
from modelmonitor.status import Condition

RULES_SELECTED = "RulesSelected"
TARGET_SELECTED = "TargetSelected"
# How long one inventory serves reconciles when no watch event says it changed. The watches
# see every change when the operator watches all namespaces; with MODELMONITOR_NAMESPACES they
# miss Prometheus objects in other namespaces, which the next resync then picks up.
MAX_AGE_SECONDS = 30.0
PROMETHEUS_CRD = "prometheuses.monitoring.coreos.com"
_T = TypeVar("_T")


def _unavailable(problem: ApiCallError, what: str) -> Verdict:
    """Unknown, with the reason a user can act on, when the objects cannot be read."""
    if problem.reason == "MissingAPI":
        return Verdict(None, "NoPrometheusCRD", f"the {PROMETHEUS_CRD} CRD is not installed")
    if problem.reason == "Forbidden":
        return Verdict(
            None,
            "Forbidden",
            f"the operator may not list {what} (the monitoring chart's ClusterRole grants it): "
            f"{problem.message}",
        )
    return Verdict(None, problem.reason, f"could not list {what}: {problem.message}")


@dataclass(frozen=True)
class Fetched:
    """One inventory and, when a list failed, the Unknown verdict it means for each condition."""

    inventory: Inventory
    rules_problem: Verdict | None = None
    target_problem: Verdict | None = None


async def _attempt(call: Awaitable[_T]) -> _T | ApiCallError:
    try:
        return await call
    except ApiCallError as problem:
        return problem


async def fetch_inventory(api: KubeApi) -> Fetched:
    """List every Prometheus, ServiceMonitor and namespace (three calls, run together)."""
    prometheuses, service_monitors, namespaces = await asyncio.gather(
        _attempt(api.list_in_all_namespaces("Prometheus")),
        _attempt(api.list_in_all_namespaces("ServiceMonitor")),
        _attempt(api.namespace_labels()),
    )
    if isinstance(prometheuses, ApiCallError):
        problem = _unavailable(prometheuses, "Prometheus objects")
        return Fetched(Inventory(), problem, problem)
    target_problem = None
    if isinstance(service_monitors, ApiCallError):
        # Without the ServiceMonitor CRD no ServiceMonitor exists; anything else is unknown.
        if service_monitors.reason != "MissingAPI":
            target_problem = _unavailable(service_monitors, "ServiceMonitors")
        service_monitors = []
    if isinstance(namespaces, ApiCallError):
        namespaces = {}  # kopf lists them too; without them, a namespace keeps its name label
    inventory = Inventory(
        prometheuses=tuple(prometheus_from(obj) for obj in prometheuses),
        service_monitors=tuple(service_monitor_from(obj) for obj in service_monitors),
        namespace_labels=namespaces,
    )
    return Fetched(inventory, target_problem=target_problem)


class InventoryCache:
    """The last inventory, shared by reconciles; one fetch at a time."""

    def __init__(
        self,
        fetch: Callable[[KubeApi], Awaitable[Fetched]] = fetch_inventory,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: Fetched | None = None
        self._fetched_at = 0.0
        # Bumped by every invalidation; an inventory fetched across one is stale at once.
        self._version = 0
        self._fetched_version = -1
        self.fetches = 0

    def invalidate(self) -> None:
        self._version += 1

    def _fresh(self) -> bool:
        return (
            self._last is not None
            and self._fetched_version == self._version
            and self._clock() - self._fetched_at < self._max_age
        )

    async def get(self, api: KubeApi) -> Fetched:
        if self._fresh():
            assert self._last is not None
            return self._last
        async with self._lock:  # concurrent reconciles wait for one fetch and share it
            if not self._fresh():
                version = self._version
                self.fetches += 1
                self._last = await self._fetch(api)
                self._fetched_at = self._clock()
                self._fetched_version = version
            assert self._last is not None
            return self._last

    def changed_by(self, kind: str, body: Mapping[str, Any], deleted: bool) -> bool:
        """Whether a watch event on a Prometheus, ServiceMonitor or Namespace changes what the
        last inventory says (then it is invalidated). Status updates, unrelated fields and
        objects never fetched (a new namespace) change nothing: no refresh storms."""
        changed = self._differs(kind, body, deleted)
        if changed:
            self.invalidate()
        return changed

    def _differs(self, kind: str, body: Mapping[str, Any], deleted: bool) -> bool:
        if self._last is None:
            return False  # nothing evaluated yet: the first fetch will see it
        inventory = self._last.inventory
        if kind == "Namespace":
            name = str((body.get("metadata") or {}).get("name", ""))
            if deleted or name not in inventory.namespace_labels:
                return False  # a namespace that comes or goes holds none of the objects yet
            labels = dict((body.get("metadata") or {}).get("labels") or {})
            return dict(inventory.namespace_labels[name]) != labels
        if kind == "Prometheus":
            if self._last.rules_problem is not None:
                return True  # e.g. the CRD was missing: any Prometheus is news
            known: dict[str, Any] = {p.ref: p for p in inventory.prometheuses}
            seen: Any = prometheus_from(body)
        else:
            known = {m.ref: m for m in inventory.service_monitors}
            seen = service_monitor_from(body)
        if deleted:
            return seen.ref in known
        return bool(known.get(seen.ref) != seen)


def _condition(kind: str, verdict: Verdict) -> Condition:
    return Condition(kind, verdict.status, verdict.reason, verdict.message)


def unknown_for_invalid_spec() -> list[Condition]:
    message = "not evaluated: the spec is invalid"
    return [
        Condition(RULES_SELECTED, None, "InvalidSpec", message),
        Condition(TARGET_SELECTED, None, "InvalidSpec", message),
    ]


async def pickup_conditions(
    api: KubeApi, cache: InventoryCache, monitor: Monitor, rule_labels: Mapping[str, str]
) -> list[Condition]:
    """RulesSelected (for the monitor's PrometheusRule, labelled `rule_labels`) and
    TargetSelected (for its target Service and port)."""
    fetched = await cache.get(api)
    rules = fetched.rules_problem or rules_verdict(
        fetched.inventory, monitor.namespace, rule_labels
    )
    target = fetched.target_problem or await _target(api, fetched.inventory, monitor)
    return [_condition(RULES_SELECTED, rules), _condition(TARGET_SELECTED, target)]


async def _target(api: KubeApi, inventory: Inventory, monitor: Monitor) -> Verdict:
    namespace, name = monitor.namespace, monitor.spec.target.service
    if not inventory.prometheuses:
        return target_verdict(inventory, (namespace, name), monitor.spec.target.port, None)
    try:
        found = await api.get_service(namespace, name)
    except ApiCallError as problem:
        if problem.reason == "Forbidden":
            return Verdict(None, "Forbidden", f"the operator may not get Services: {problem}")
        return Verdict(None, problem.reason, f"could not read Service {name}: {problem.message}")
    service = None if found is None else service_from(found)
    return target_verdict(inventory, (namespace, name), monitor.spec.target.port, service)
