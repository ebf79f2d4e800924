"""Threshold rules: evaluate each one, then combine them the Azure way.

Scale out if ANY Increase rule fires (the largest count asked wins); scale in only if ALL Decrease
rules fire (the smallest step wins: "scale in by as little as possible"). A rule with insufficient
data, a failed source or a running cooldown does not fire. A cooldown runs from the group's last
scale action in either direction, each rule with its own length, as in Azure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from autozero.engine.aggregate import Sample, aggregate
from autozero.engine.decision import RuleStatus, RuleVerdict
from autozero.engine.spec import ActionType, Direction, Rule, ScaleAction


def _fmt(value: float) -> str:
    return f"{value:g}"


def proposed_count(action: ScaleAction, current: int) -> int:
    """The count `action` asks for from `current` (before any clamping)."""
    sign = 1 if action.direction is Direction.INCREASE else -1
    match action.type:
        case ActionType.CHANGE_COUNT:
            return current + sign * int(action.value)
        case ActionType.PERCENT_CHANGE_COUNT:
            # Rounded away from zero and at least 1, so 10 % of 3 still moves by one.
            step = max(1, math.ceil(current * action.value / 100.0))
            return current + sign * step
        case ActionType.EXACT_COUNT:
            exact = int(action.value)
            # An Increase rule never lowers the count, a Decrease rule never raises it.
            return max(current, exact) if sign > 0 else min(current, exact)


def observed_value(rule: Rule, value: float, replicas: int) -> float:
    """The value a rule compares: divided by the replica count for `perInstance` rules."""
    return value / max(1, replicas) if rule.per_instance else value


def evaluate_rule(
    index: int,
    rule: Rule,
    *,
    samples: Sequence[Sample],
    failed: bool,
    now: float,
    current: int,
    last_scale_at: float | None,
) -> RuleVerdict:
    def verdict(
        status: RuleStatus, observed: float | None, detail: str, proposed: int | None = None
    ) -> RuleVerdict:
        return RuleVerdict(
            index=index,
            metric=rule.metric,
            direction=rule.action.direction,
            operator=rule.operator,
            threshold=rule.threshold,
            observed=observed,
            status=status,
            proposed=proposed,
            detail=detail,
        )

    if failed:
        return verdict(RuleStatus.SOURCE_FAILED, None, f"source for {rule.metric} failed")
    result = aggregate(
        samples,
        now=now,
        grain_seconds=rule.time_grain.total_seconds(),
        grains=rule.grains,
        statistic=rule.statistic,
        aggregation=rule.time_aggregation,
    )
    if result.value is None:
        return verdict(
            RuleStatus.INSUFFICIENT_DATA,
            None,
            f"insufficient data for {rule.metric}: "
            f"{result.grains_with_data}/{result.grains_needed} grains",
        )
    observed = observed_value(rule, result.value, current)
    comparison = f"{rule.metric} {_fmt(observed)} {rule.operator.symbol} {_fmt(rule.threshold)}"
    if not rule.operator.holds(observed, rule.threshold):
        return verdict(RuleStatus.NOT_MET, observed, f"not met: {comparison} is false")
    cooldown = rule.action.cooldown.total_seconds()
    if last_scale_at is not None and now < last_scale_at + cooldown:
        until = datetime.fromtimestamp(last_scale_at + cooldown, tz=UTC)
        return verdict(
            RuleStatus.IN_COOLDOWN,
            observed,
            f"{comparison}, but in cooldown until {until.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        )
    return verdict(
        RuleStatus.FIRED, observed, f"fired: {comparison}", proposed_count(rule.action, current)
    )


def would_flap(
    rules: Sequence[Rule],
    verdicts: Sequence[RuleVerdict],
    *,
    current: int,
    new: int,
    intensive: Mapping[int, bool],
) -> RuleVerdict | None:
    """The Increase rule that would fire right after scaling in from `current` to `new`, if any.

    Azure's flapping guard: a per-instance metric spreads over fewer instances after a scale-in,
    so it is estimated as `value x current / new`. Only intensive metrics (per-instance rules, or
    averages across instances) move with the count; a total backlog does not.
    """
    for rule, seen in zip(rules, verdicts, strict=True):
        if rule.action.direction is not Direction.INCREASE or seen.observed is None:
            continue
        if not intensive.get(seen.index, False):
            continue
        estimate = seen.observed * current / max(1, new)
        if rule.operator.holds(estimate, rule.threshold):
            return RuleVerdict(
                index=seen.index,
                metric=rule.metric,
                direction=rule.action.direction,
                operator=rule.operator,
                threshold=rule.threshold,
                observed=estimate,
                status=seen.status,
                proposed=None,
                detail=(
                    f"scale-in to {new} would flap: {rule.metric} estimate "
                    f"{_fmt(estimate)} {rule.operator.symbol} {_fmt(rule.threshold)}"
                ),
            )
    return None
