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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from autozero.engine.spec import Statistic, TimeAggregation

#: (unix time, value, instance); instance is "" for a metric with one series.
Sample = tuple[float, float, str]


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
    buckets: list[list[Sample]] = [[] for _ in range(grains)]
    oldest = now - grains * grain_seconds
    for sample in samples:
        t = sample[0]
        if t <= oldest or t > now:
            continue
        index = min(int((now - t) // grain_seconds), grains - 1)
        buckets[index].append(sample)
    filled = sum(1 for bucket in buckets if bucket)
    if filled < grains:
        return Aggregate(None, filled, grains)
    per_grain = [reduce_grain(bucket, statistic) for bucket in reversed(buckets)]
    return Aggregate(reduce_window(per_grain, aggregation), grains, grains)
