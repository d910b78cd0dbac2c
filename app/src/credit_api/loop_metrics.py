"""Per-request counters and histograms kept as plain numbers, exposed through a collector.

prometheus_client's `Counter.inc` and `Histogram.observe` take a lock and walk the buckets in
Python on every call, and a prediction makes four updates (request count and duration,
decision count, score): a share of the request's cost that `make bench-api-instructions`
shows (docs/performance.md). These series are only updated from the event loop thread (the
middleware and the prediction routes are async), so plain attributes and `bisect` suffice.
The collector, prometheus_client's extension point for values kept elsewhere, turns them
into metric families at scrape time; `/metrics` is async too, so a scrape never sees half an
observation.
"""

from __future__ import annotations

import itertools
import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

# How prometheus_client writes `le` values (its helper is untyped).
go_float: Callable[[float], str] = floatToGoString


class GaugeCell:
    """A number moved up and down on the event loop thread, read by a Gauge at scrape time.

    Slotted and reached directly by its updater: an increment is a slot store, not an
    attribute lookup through a larger object.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class CounterCell:
    """One labelled counter series."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HistogramCell:
    """One labelled histogram series: a count per bucket (the last one +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "created", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        # bisect_left finds the first bound >= value: Prometheus buckets are `le`.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


CellT = TypeVar("CellT")


class _Labelled(Generic[CellT]):
    """Series by label values, each created on first lookup."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        new_cell: Callable[[], CellT],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._new_cell = new_cell
        self._cells: dict[tuple[str, ...], CellT] = {}

    def cell(self, *labels: str) -> CellT:
        """The series for these label values (created empty on first use)."""
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
        found = self._cells.get(labels)
        if found is None:
            found = self._cells[labels] = self._new_cell()
        return found


class LoopCounter(_Labelled[CounterCell]):
    """A labelled counter updated from the event loop thread only."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, documentation, labelnames, CounterCell)

    def family(self, with_samples: bool = True) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if with_samples:
            for labels, cell in self._cells.items():
                family.add_metric(labels, cell.value, created=cell.created)
        return family


class LoopHistogram(_Labelled[HistogramCell]):
    """A labelled histogram updated from the event loop thread only."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        bounds = tuple(float(b) for b in buckets)
        # Strictly: a repeated bound would expose two series with the same `le`.
        if any(low >= high for low, high in itertools.pairwise(bounds)) or math.inf in bounds:
            raise ValueError("buckets must be strictly increasing and finite (+Inf is implied)")
        super().__init__(name, documentation, labelnames, lambda: HistogramCell(bounds))
        self._les = [*(go_float(b) for b in bounds), "+Inf"]

    def family(self, with_samples: bool = True) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        if with_samples:
            for labels, cell in self._cells.items():
                cumulative, buckets = 0.0, []
                for le, count in zip(self._les, cell.counts, strict=True):
                    cumulative += count
                    buckets.append((le, cumulative))
                family.add_metric(labels, buckets, sum_value=cell.total)
                label_map = dict(zip(self.labelnames, labels, strict=True))
                family.samples.append(Sample(f"{self.name}_created", label_map, cell.created))
        return family


class LoopMetricsCollector:
    """Exposes loop-updated counters and histograms on a registry."""

    def __init__(
        self, metrics: Iterable[LoopCounter | LoopHistogram], registry: CollectorRegistry
    ) -> None:
        self._metrics = list(metrics)
        registry.register(self)

    def describe(self) -> list[Metric]:
        return [metric.family(with_samples=False) for metric in self._metrics]

    def collect(self) -> list[Metric]:
        return [metric.family() for metric in self._metrics]
