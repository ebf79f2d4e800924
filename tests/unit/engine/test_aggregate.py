"""Two-step aggregation: per grain across instances, then over the window."""

from __future__ import annotations

import pytest
from autozero.engine.aggregate import Sample, aggregate, reduce_grain, reduce_window
from autozero.engine.spec import Statistic, TimeAggregation

# One grain: two polls of two instances (a: 10 then 30, b: 50 then 70).
GRAIN: list[Sample] = [(0.0, 10.0, "a"), (0.0, 50.0, "b"), (15.0, 30.0, "a"), (15.0, 70.0, "b")]


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        pytest.param(Statistic.AVERAGE, 40.0, id="average-of-instance-means"),
        pytest.param(Statistic.MIN, 10.0, id="min-sample"),
        pytest.param(Statistic.MAX, 70.0, id="max-sample"),
        pytest.param(Statistic.SUM, 80.0, id="sum-of-instance-means"),
        pytest.param(Statistic.LAST, 50.0, id="last-poll-mean"),
        pytest.param(Statistic.COUNT, 4.0, id="count-samples"),
    ],
)
def test_grain_statistics_across_instances(statistic: Statistic, expected: float) -> None:
    assert reduce_grain(GRAIN, statistic) == expected


def test_average_weighs_instances_not_samples() -> None:
    # a reported three times, b once: each instance counts once.
    grain: list[Sample] = [(0, 10, "a"), (5, 10, "a"), (10, 10, "a"), (10, 50, "b")]
    assert reduce_grain(grain, Statistic.AVERAGE) == 30.0


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        pytest.param(TimeAggregation.AVERAGE, 4.0, id="average"),
        pytest.param(TimeAggregation.MINIMUM, 1.0, id="minimum"),
        pytest.param(TimeAggregation.MAXIMUM, 9.0, id="maximum"),
        pytest.param(TimeAggregation.TOTAL, 20.0, id="total"),
        pytest.param(TimeAggregation.LAST, 2.0, id="last-is-newest-grain"),
        pytest.param(TimeAggregation.COUNT, 5.0, id="count-grains"),
    ],
)
def test_window_aggregations(aggregation: TimeAggregation, expected: float) -> None:
    assert reduce_window([1.0, 9.0, 5.0, 3.0, 2.0], aggregation) == expected


def series(values: list[float], *, every: float, end: float) -> list[Sample]:
    """Samples of one series, the last at `end`, one every `every` seconds."""
    n = len(values)
    return [(end - (n - 1 - k) * every, v, "") for k, v in enumerate(values)]


def test_window_of_five_grains_uses_the_newest_data() -> None:
    # 20 polls at 15 s: grains of 4 samples each, newest grain ends at now.
    samples = series([float(k) for k in range(20)], every=15, end=1000)
    result = aggregate(
        samples,
        now=1000,
        grain_seconds=60,
        grains=5,
        statistic=Statistic.AVERAGE,
        aggregation=TimeAggregation.LAST,
    )
    assert result.sufficient
    assert result.value == pytest.approx((16 + 17 + 18 + 19) / 4)


def test_window_with_a_missing_grain_is_insufficient() -> None:
    samples = series([1.0] * 20, every=15, end=1000)
    gap = [s for s in samples if not 1000 - 180 < s[0] <= 1000 - 120]  # grain 2 empty
    result = aggregate(
        gap,
        now=1000,
        grain_seconds=60,
        grains=5,
        statistic=Statistic.AVERAGE,
        aggregation=TimeAggregation.AVERAGE,
    )
    assert not result.sufficient
    assert (result.grains_with_data, result.grains_needed) == (4, 5)


def test_window_just_started_is_insufficient() -> None:
    samples = series([5.0] * 8, every=15, end=1000)  # two minutes of data, five needed
    result = aggregate(
        samples,
        now=1000,
        grain_seconds=60,
        grains=5,
        statistic=Statistic.MAX,
        aggregation=TimeAggregation.MAXIMUM,
    )
    assert result.value is None
    assert result.grains_with_data == 2


def test_samples_outside_the_window_are_ignored() -> None:
    samples: list[Sample] = [(700.0, 999.0, ""), (1001.0, 999.0, "")]  # too old, in the future
    samples += series([1.0] * 20, every=15, end=1000)
    result = aggregate(
        samples,
        now=1000,
        grain_seconds=60,
        grains=5,
        statistic=Statistic.MAX,
        aggregation=TimeAggregation.MAXIMUM,
    )
    assert result.value == 1.0


def test_grain_boundaries_are_half_open() -> None:
    # A sample exactly one window old is out; one at `now` is in the newest grain.
    samples: list[Sample] = [(700.0, 100.0, ""), (1000.0, 1.0, "")]
    result = aggregate(
        samples,
        now=1000,
        grain_seconds=300,
        grains=1,
        statistic=Statistic.MAX,
        aggregation=TimeAggregation.MAXIMUM,
    )
    assert result.value == 1.0
