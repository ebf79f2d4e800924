"""Azure-style two-step aggregation: samples -> one value per time grain -> one value per window.

Grains are laid back from `now`: grain 0 covers (now - grain, now], grain 1 the one before, and so
on for `time_window / time_grain` grains. Laying them from `now` rather than from the clock's minute
boundaries means the newest data always counts in full and a decision never waits for a boundary.
A window with any empty grain is *insufficient data*: a rule on it does not fire, so a gap in the
samples (a source that was down) can never drive a scale-in.

Within a grain (`Statistic`), a sample is (time, value, instance):
  Average  mean over instances of each instance's mean
  Min/Max  smallest / largest sample
  Sum      sum over instances of each instance's mean (4 VMs at 50 % -> 200)
  Last     the newest poll (mean over instances if several reported at that time)
  Count    number of samples
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from autozero.engine.spec import Statistic, TimeAggregation

#: (unix time, value, instance); instance is "" for a metric with one series.
Sample = tuple[float, float, str]


@dataclass(frozen=True, slots=True)
class Window:
    """One metric's recent samples, column by column and in time order.

    Columns make the hot path cheap: a grain is a slice found by bisection, and reducing a
    single-series grain is one C-level sum/min/max over that slice.
    """

    times: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    instances: tuple[str, ...] = ()  # empty: a single series

    def __len__(self) -> int:
        return len(self.times)

    @property
    def instanced(self) -> bool:
        return bool(self.instances)

    def since(self, cutoff: float) -> Window:
        """The samples newer than `cutoff`."""
        start = bisect_right(self.times, cutoff)
        if start == 0:
            return self
        return Window(self.times[start:], self.values[start:], self.instances[start:])

    def add(self, at: float, value: float, per_instance: Mapping[str, float] | None) -> Window:
        if not per_instance:
            instances = (*self.instances, "") if self.instances else ()
            return Window((*self.times, at), (*self.values, value), instances)
        names = tuple(str(name) for name in per_instance)
        old = self.instances or ("",) * len(self.times)
        return Window(
            self.times + (at,) * len(names),
            self.values + tuple(float(v) for v in per_instance.values()),
            old + names,
        )

    def samples(self, start: int = 0, end: int | None = None) -> list[Sample]:
        stop = len(self.times) if end is None else end
        instances = self.instances or ("",) * len(self.times)
        return list(
            zip(self.times[start:stop], self.values[start:stop], instances[start:stop], strict=True)
        )

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Window:
        ordered = sorted(samples, key=lambda s: s[0])
        instances = tuple(s[2] for s in ordered)
        return cls(
            tuple(s[0] for s in ordered),
            tuple(s[1] for s in ordered),
            instances if any(instances) else (),
        )


@dataclass(frozen=True, slots=True)
class Aggregate:
    value: float | None
    grains_with_data: int
    grains_needed: int

    @property
    def sufficient(self) -> bool:
        return self.value is not None


def _mean_per_instance(grain: Sequence[Sample]) -> list[float]:
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _, value, instance in grain:
        sums[instance] = sums.get(instance, 0.0) + value
        counts[instance] = counts.get(instance, 0) + 1
    return [sums[i] / counts[i] for i in sums]


def reduce_grain(grain: Sequence[Sample], statistic: Statistic) -> float:
    """Reduce the samples of one non-empty grain with `statistic`."""
    match statistic:
        case Statistic.MIN:
            return min(s[1] for s in grain)
        case Statistic.MAX:
            return max(s[1] for s in grain)
        case Statistic.COUNT:
            return float(len(grain))
        case Statistic.LAST:
            newest = max(s[0] for s in grain)
            last = [s[1] for s in grain if s[0] == newest]
            return sum(last) / len(last)
        case Statistic.AVERAGE:
            means = _mean_per_instance(grain)
            return sum(means) / len(means)
        case Statistic.SUM:
            return sum(_mean_per_instance(grain))


def reduce_window(values: Sequence[float], aggregation: TimeAggregation) -> float:
    """Reduce per-grain values, oldest first, with `aggregation`."""
    match aggregation:
        case TimeAggregation.AVERAGE:
            return sum(values) / len(values)
        case TimeAggregation.MINIMUM:
            return min(values)
        case TimeAggregation.MAXIMUM:
            return max(values)
        case TimeAggregation.TOTAL:
            return float(sum(values))
        case TimeAggregation.LAST:
            return values[-1]
        case TimeAggregation.COUNT:
            return float(len(values))


def _reduce_series(values: Sequence[float], statistic: Statistic) -> float:
    """`reduce_grain` for a single series: every statistic is one C-level call."""
    match statistic:
        case Statistic.AVERAGE | Statistic.SUM:
            return sum(values) / len(values)
        case Statistic.MIN:
            return min(values)
        case Statistic.MAX:
            return max(values)
        case Statistic.LAST:
            return values[-1]
        case Statistic.COUNT:
            return float(len(values))


def aggregate(
    samples: Iterable[Sample],
    *,
    now: float,
    grain_seconds: float,
    grains: int,
    statistic: Statistic,
    aggregation: TimeAggregation,
) -> Aggregate:
    """Bucket `samples` into `grains` grains ending at `now` and reduce them."""
    return WindowCache({"m": Window.of(samples)}, now).get(
        "m", grain_seconds, grains, statistic, aggregation
    )


class WindowCache:
    """Grain boundaries and reductions memoised for one decision: rules often share a metric and
    a window, so twenty rules on two metrics cut the samples into grains twice, not twenty times.

    It also remembers what it was asked, so `next_change` can say when any answer it gave may
    change with no new sample: the deadline of a decision that read these windows.
    """

    def __init__(self, windows: Mapping[str, Window], now: float) -> None:
        self._windows = windows
        self._now = now
        self._bounds: dict[tuple[str, float, int], tuple[list[int], int]] = {}
        self._grains: dict[tuple[str, float, int, Statistic], list[float]] = {}
        self._asked_instanced: set[str] = set()

    @property
    def consulted(self) -> bool:
        """Whether any window was aggregated."""
        return bool(self._bounds)

    def instanced(self, metric: str) -> bool:
        """Whether the metric's samples carry instance names (a per-instance signal like CPU)."""
        self._asked_instanced.add(metric)
        window = self._windows.get(metric)
        return window is not None and window.instanced

    def next_change(self, history_seconds: Mapping[str, float]) -> float:
        """The earliest instant after `now` (unix seconds; inf for never) at which an answer given
        so far may differ, if the same windows were asked again later, each with one more sample
        at that later instant (the next read, or none).

        A later sample always lands in grain 0, so an aggregate changes only when a sample kept
        now moves to an older grain or out of the window: sample i crosses boundary j (j grains
        back) at `t_i + j * grain`. The grain bounds found for `get` are exactly, per j, the first
        sample not yet across boundary j, so this costs one look-up per grain, no search. A
        metric's `instanced` answer can change only once all its samples have left the history
        (`history_seconds`), i.e. no sooner than its oldest sample's leaving.
        """
        soonest = math.inf
        for (metric, grain_seconds, grains), (bounds, _) in self._bounds.items():
            window = self._windows.get(metric)
            if window is None:
                continue
            times = window.times
            count = len(times)
            j = grains  # bounds[k] is the first sample after boundary grains - k
            for index in bounds[:grains]:
                if index < count:
                    at = times[index] + j * grain_seconds
                    if at < soonest:
                        soonest = at
                j -= 1
        for metric in self._asked_instanced:
            window = self._windows.get(metric)
            # Only a single-series newest sample can let the flag fall once the rest is gone.
            if window is not None and window.instanced and window.instances[-1] == "":
                soonest = min(soonest, window.times[0] + history_seconds.get(metric, 0.0))
        return soonest

    def get(
        self,
        metric: str,
        grain_seconds: float,
        grains: int,
        statistic: Statistic,
        aggregation: TimeAggregation,
    ) -> Aggregate:
        window = self._windows.get(metric, Window())
        key = (metric, grain_seconds, grains)
        cached = self._bounds.get(key)
        if cached is None:
            times = window.times
            # bounds[i]..bounds[i+1] is grain i, oldest first; a grain is (start, end].
            bounds = [
                bisect_right(times, self._now - k * grain_seconds) for k in range(grains, -1, -1)
            ]
            filled = sum(1 for i in range(grains) if bounds[i] < bounds[i + 1])
            cached = (bounds, filled)
            self._bounds[key] = cached
        bounds, filled = cached
        if filled < grains:
            return Aggregate(None, filled, grains)
        reduced_key = (metric, grain_seconds, grains, statistic)
        per_grain = self._grains.get(reduced_key)
        if per_grain is None:
            if window.instanced:
                per_grain = [
                    reduce_grain(window.samples(bounds[i], bounds[i + 1]), statistic)
                    for i in range(grains)
                ]
            else:
                values = window.values
                per_grain = [
                    _reduce_series(values[bounds[i] : bounds[i + 1]], statistic)
                    for i in range(grains)
                ]
            self._grains[reduced_key] = per_grain
        return Aggregate(reduce_window(per_grain, aggregation), grains, grains)
