"""The shared inventory: one fetch serves a burst of reconciles; only real changes refresh."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from modelmonitor.pickup import Fetched, InventoryCache
from modelmonitor.selection import Inventory, Verdict, prometheus_from, service_monitor_from

PROMETHEUS: dict[str, Any] = {
    "metadata": {"name": "kps", "namespace": "monitoring", "resourceVersion": "1"},
    "spec": {"ruleSelector": {"matchLabels": {"release": "kps"}}, "ruleNamespaceSelector": {}},
    "status": {"availableReplicas": 1},
}
SERVICE_MONITOR: dict[str, Any] = {
    "metadata": {"name": "credit-api", "namespace": "credit", "labels": {"release": "kps"}},
    "spec": {"selector": {}, "endpoints": [{"port": "http"}]},
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cache(
    clock: Clock | None = None, fetched: Fetched | None = None, delay: float = 0.0
) -> InventoryCache:
    inventory = Inventory(
        prometheuses=(prometheus_from(PROMETHEUS),),
        service_monitors=(service_monitor_from(SERVICE_MONITOR),),
        namespace_labels={"credit": {"team": "risk"}},
    )

    async def fetch(api: Any) -> Fetched:
        await asyncio.sleep(delay)
        return fetched or Fetched(inventory)

    return InventoryCache(fetch, max_age=30.0, clock=clock or Clock())


def test_a_burst_of_reconciles_shares_one_fetch() -> None:
    cache = _cache(delay=0.01)

    async def burst() -> list[Fetched]:
        return await asyncio.gather(*(cache.get(api=None) for _ in range(50)))  # type: ignore[arg-type]

    results = asyncio.run(burst())
    assert cache.fetches == 1
    assert all(result is results[0] for result in results)


def test_the_inventory_is_fetched_again_when_old_or_invalidated() -> None:
    clock = Clock()
    cache = _cache(clock)

    async def get() -> None:
        await cache.get(api=None)  # type: ignore[arg-type]

    asyncio.run(get())
    clock.now = 29.0
    asyncio.run(get())
    assert cache.fetches == 1
    clock.now = 31.0
    asyncio.run(get())
    assert cache.fetches == 2
    cache.invalidate()
    asyncio.run(get())
    assert cache.fetches == 3


def test_an_invalidation_during_a_fetch_makes_the_next_reader_fetch_again() -> None:
    cache = _cache(delay=0.02)

    async def scenario() -> None:
        first = asyncio.create_task(cache.get(api=None))  # type: ignore[arg-type]
        await asyncio.sleep(0.005)
        cache.invalidate()  # the running fetch may have listed before the change
        await first
        await cache.get(api=None)  # type: ignore[arg-type]

    asyncio.run(scenario())
    assert cache.fetches == 2


def _fetched(cache: InventoryCache) -> None:
    asyncio.run(cache.get(api=None))  # type: ignore[arg-type]


def test_nothing_evaluated_yet_means_nothing_to_refresh() -> None:
    cache = _cache()
    assert not cache.changed_by("Prometheus", PROMETHEUS, deleted=False)


def test_status_and_unrelated_updates_refresh_nothing() -> None:
    cache = _cache()
    _fetched(cache)
    updated = copy.deepcopy(PROMETHEUS)
    updated["metadata"]["resourceVersion"] = "2"
    updated["status"] = {"availableReplicas": 2, "conditions": [{"type": "Available"}]}
    updated["spec"]["replicas"] = 3
    assert not cache.changed_by("Prometheus", updated, deleted=False)
    relisted = copy.deepcopy(SERVICE_MONITOR)
    relisted["spec"]["endpoints"][0]["honorLabels"] = True
    assert not cache.changed_by("ServiceMonitor", relisted, deleted=False)
    assert cache.fetches == 1


def test_an_interval_or_timeout_change_refreshes_the_verdict() -> None:
    """prometheus-operator skips a ServiceMonitor whose timeout exceeds its interval."""
    cache = _cache()
    _fetched(cache)
    slower = copy.deepcopy(SERVICE_MONITOR)
    slower["spec"]["endpoints"][0]["scrapeTimeout"] = "1m"
    assert cache.changed_by("ServiceMonitor", slower, deleted=False)


def test_selector_label_and_port_changes_refresh() -> None:
    cache = _cache()
    _fetched(cache)
    selector = copy.deepcopy(PROMETHEUS)
    selector["spec"]["ruleSelector"] = {}
    assert cache.changed_by("Prometheus", selector, deleted=False)
    _fetched(cache)  # the changed_by above invalidated the inventory
    relabelled = copy.deepcopy(SERVICE_MONITOR)
    relabelled["metadata"]["labels"] = {}
    assert cache.changed_by("ServiceMonitor", relabelled, deleted=False)
    ported = copy.deepcopy(SERVICE_MONITOR)
    ported["spec"]["endpoints"] = [{"port": "metrics"}]
    assert cache.changed_by("ServiceMonitor", ported, deleted=False)


def test_objects_that_come_or_go_refresh() -> None:
    cache = _cache()
    _fetched(cache)
    assert cache.changed_by("Prometheus", PROMETHEUS, deleted=True)
    other = copy.deepcopy(PROMETHEUS)
    other["metadata"]["name"] = "other"
    assert cache.changed_by("Prometheus", other, deleted=False)
    assert not cache.changed_by("Prometheus", other, deleted=True)  # never fetched


def test_namespaces_refresh_only_when_the_labels_of_a_known_one_change() -> None:
    cache = _cache()
    _fetched(cache)
    namespace = {"metadata": {"name": "credit", "labels": {"team": "risk"}}}
    assert not cache.changed_by("Namespace", namespace, deleted=False)
    assert not cache.changed_by("Namespace", {"metadata": {"name": "new"}}, deleted=False)
    assert not cache.changed_by("Namespace", namespace, deleted=True)
    relabelled = {"metadata": {"name": "credit", "labels": {"team": "fraud"}}}
    assert cache.changed_by("Namespace", relabelled, deleted=False)


def test_any_prometheus_is_news_when_they_could_not_be_listed() -> None:
    missing = Verdict(None, "NoPrometheusCRD", "not installed")
    cache = _cache(fetched=Fetched(Inventory(), missing, missing))
    _fetched(cache)
    assert cache.changed_by("Prometheus", PROMETHEUS, deleted=False)
