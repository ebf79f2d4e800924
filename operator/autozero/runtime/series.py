"""Metric families whose series are plain numbers in dicts, turned into samples only when scraped.

A `prometheus_client` child (one per label set) is a full object with its own lock and value
cells: about 3 KiB a series, 32 MiB for the ~60,000 series of 10,000 groups, most of a replica's
memory budget. Here a series is one float (a histogram's, a short list) in a dict keyed by the
policy and then by the rest of its labels, so that forgetting a policy drops one entry, and the
exposition is built at scrape time, the way kube-state-metrics builds its own. Values change on
the runtime's event loop and are read by the /metrics thread: one lock per family.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import Literal

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

PolicyKey = tuple[str, str]  # (namespace, policy): the first two labels of every family
Kind = Literal["gauge", "counter", "histogram"]

#: prometheus_client's default buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Family:
    """One metric family: a name, its help, its label names (namespace and policy first)."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], kind: Kind):
        if tuple(labelnames[:2]) != ("namespace", "policy"):
            raise ValueError(f"{name}: the first labels must be namespace and policy")
        self.name, self.documentation, self.kind = name, documentation, kind
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        # policy -> the rest of the labels -> a value (a histogram's: counts per bucket + sum)
        self._values: dict[PolicyKey, dict[tuple[str, ...], float | list[float]]] = {}

    def labels(self, *values: str) -> Series:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(values)} label values for {self.labelnames}")
        return Series(self, (values[0], values[1]), tuple(values[2:]))

    def forget(self, policy: PolicyKey) -> int:
        """Drop a policy's series; how many there were."""
        with self._lock:
            return len(self._values.pop(policy, {}))

    def _add(self, policy: PolicyKey, rest: tuple[str, ...], amount: float, *, set_: bool) -> None:
        with self._lock:
            series = self._values.setdefault(policy, {})
            old = series.get(rest, 0.0)
            assert isinstance(old, float)
            series[rest] = amount if set_ else old + amount

    def _observe(self, policy: PolicyKey, rest: tuple[str, ...], value: float) -> None:
        with self._lock:
            counts = self._values.setdefault(policy, {}).get(rest)
            if not isinstance(counts, list):
                counts = [0.0] * (len(BUCKETS) + 2)  # each bucket, +Inf, then the sum
                self._values[policy][rest] = counts
            counts[bisect.bisect_left(BUCKETS, value)] += 1
            counts[-1] += value

    def _snapshot(self) -> list[tuple[list[str], float | list[float]]]:
        with self._lock:
            return [
                ([*policy, *rest], value if isinstance(value, float) else list(value))
                for policy, series in self._values.items()
                for rest, value in series.items()
            ]

    def collect(self) -> Iterator[Metric]:
        """The family with every sample, as `prometheus_client` exposes it."""
        yield self._family(self._snapshot())

    def describe(self) -> Iterator[Metric]:
        """The family without samples: what a registry needs to check names are unique."""
        yield self._family([])

    def _family(self, snapshot: list[tuple[list[str], float | list[float]]]) -> Metric:
        if self.kind == "histogram":
            histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for labels, counts in snapshot:
                assert isinstance(counts, list)
                cumulative, buckets = 0.0, []
                for bound, count in zip((*BUCKETS, float("inf")), counts[:-1], strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), cumulative))
                histogram.add_metric(labels, buckets, counts[-1])
            return histogram
        family: GaugeMetricFamily | CounterMetricFamily
        if self.kind == "counter":
            family = CounterMetricFamily(
                self.name.removesuffix("_total"), self.documentation, labels=self.labelnames
            )
        else:
            family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in snapshot:
            assert isinstance(value, float)
            family.add_metric(labels, value)
        return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Series:
    """One label set of a family: what `Family.labels(...)` returns, to set, add or observe."""

    __slots__ = ("_family", "_policy", "_rest")

    def __init__(self, family: Family, policy: PolicyKey, rest: tuple[str, ...]) -> None:
        self._family, self._policy, self._rest = family, policy, rest

    def set(self, value: float) -> None:
        self._family._add(self._policy, self._rest, float(value), set_=True)

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"{self._family.name}: a counter only goes up")
        self._family._add(self._policy, self._rest, float(amount), set_=False)

    def observe(self, value: float) -> None:
        self._family._observe(self._policy, self._rest, float(value))
