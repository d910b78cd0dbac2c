from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from credit_api.loop_metrics import LoopCounter, LoopHistogram, LoopMetricsCollector


def test_histogram_exposition_matches_prometheus_client() -> None:
    """Same observations, same buckets: the same exposition as prometheus_client's Histogram
    (bar the _created timestamps), `le` edges included."""
    buckets = (0.005, 0.01, 0.25, 1.0)
    observations = [0.0, 0.005, 0.0051, 0.01, 0.3, 1.0, 7.5]
    reference_registry, loop_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h", "help", ["route"], buckets=buckets, registry=reference_registry)
    loop = LoopHistogram("h", "help", ["route"], buckets=buckets)
    LoopMetricsCollector([loop], loop_registry)
    for seconds in observations:
        reference.labels("/a").observe(seconds)
        loop.cell("/a").observe(seconds)

    def without_created(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [line for line in text.splitlines() if "_created" not in line]

    assert without_created(loop_registry) == without_created(reference_registry)
    assert loop_registry.get_sample_value("h_bucket", {"route": "/a", "le": "0.005"}) == 2
    assert loop_registry.get_sample_value("h_bucket", {"route": "/a", "le": "+Inf"}) == 7
    assert loop_registry.get_sample_value("h_created", {"route": "/a"}) is not None


def test_counter_series_exist_from_their_first_lookup() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("c", "help", ["decision"])
    LoopMetricsCollector([counter], registry)
    counter.cell("good")
    counter.cell("bad").inc()
    counter.cell("bad").inc(2)
    assert registry.get_sample_value("c_total", {"decision": "good"}) == 0
    assert registry.get_sample_value("c_total", {"decision": "bad"}) == 3


def test_wrong_labels_and_buckets_are_refused() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        LoopCounter("c", "help", ["a", "b"]).cell("only-one")
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("h", "help", [], buckets=(1.0, 0.5))
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("h", "help", [], buckets=(0.5, 1.0, 1.0))  # two series with le="1.0"
    with pytest.raises(ValueError, match="finite"):
        LoopHistogram("h", "help", [], buckets=(0.5, math.inf))
