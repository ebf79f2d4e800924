"""Target tracking: the HPA's AverageValue and Value forms, beside the Azure threshold rules.

A target rule's metric is aggregated exactly as a threshold rule's (grain, statistic, window,
time aggregation); then, with `v` that value and `n` the current count:

- `averageValue: V`: `v` is a total for the group (a backlog); desired = ceil(v / V), and the
  usage ratio is v / (n * V);
- `value: V`: `v` is a ratio at the current count (a CPU utilisation); desired = ceil(n * v / V),
  and the usage ratio is v / V; at 0 replicas, ceil(v / V).

Within `tolerance` (|1 - ratio| <= tolerance, 0.1 by default) the count does not change. This
is the HPA's replica calculator (`GetExternalPerPodMetricReplicas` and
`GetExternalMetricReplicas` in the kube-controller-manager), except that `ceil` forgives float
error below 1e-9, so 0.96 / 0.8 * 5 is 6, not 7. How target and threshold rules combine is in
`autozero.engine.decide` and docs/concepts.md.
"""

from __future__ import annotations

import math

from autozero.engine.aggregate import Aggregate
from autozero.engine.decision import RuleStatus, RuleVerdict
from autozero.engine.spec import TargetKind, TargetRule

#: Float error forgiven before rounding up: 6.000000000000001 replicas is 6.
_EPSILON = 1e-9


def _ceil(value: float) -> int:
    return math.ceil(value - _EPSILON)


def desired_count(rule: TargetRule, value: float, current: int) -> int | None:
    """The count `rule` wants at `current` replicas for the aggregated `value`, tolerance
    applied (at 0 replicas there is no tolerance: any count above 0 is a change); None when the
    value is not a finite number."""
    target = rule.target
    if target.kind is TargetKind.AVERAGE_VALUE:
        wanted = value / target.value
        ratio = wanted / current if current > 0 else None
    else:
        ratio = value / target.value
        wanted = current * ratio if current > 0 else ratio
    if not math.isfinite(wanted):
        return None
    if current > 0 and ratio is not None and abs(1.0 - ratio) <= target.tolerance:
        return current
    return _ceil(wanted)


def evaluate_target(
    index: int, rule: TargetRule, *, result: Aggregate | None, current: int
) -> RuleVerdict:
    """One target rule's verdict; `result` is its aggregated window, or None when its source
    failed. It fires when the count it wants differs from `current`."""
    target = rule.target
    rule_of = (index, rule.metric, None, None, target.value)
    if result is None:
        return RuleVerdict(*rule_of, None, RuleStatus.SOURCE_FAILED, target=target)
    if result.value is None:
        grains = (result.grains_with_data, result.grains_needed)
        return RuleVerdict(
            *rule_of, None, RuleStatus.INSUFFICIENT_DATA, grains=grains, target=target
        )
    wanted = desired_count(rule, result.value, current)
    status = RuleStatus.FIRED if wanted is not None and wanted != current else RuleStatus.NOT_MET
    return RuleVerdict(*rule_of, result.value, status, wanted, target=target)
