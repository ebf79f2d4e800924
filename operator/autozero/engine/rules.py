"""Threshold rules: evaluate each one, then combine them the Azure way.

Scale out if ANY Increase rule fires (the largest count asked wins); scale in only if ALL Decrease
rules fire (the smallest step wins: "scale in by as little as possible"). A rule with insufficient
data, a failed source or a running cooldown does not fire. A cooldown runs from the group's last
scale action in either direction, each rule with its own length, as in Azure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from autozero.engine.aggregate import Aggregate
from autozero.engine.decision import RuleStatus, RuleVerdict
from autozero.engine.spec import ActionType, Direction, Operator, Rule, ScaleAction, TargetRule


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
    result: Aggregate | None,
    now: float,
    current: int,
    last_scale_at: float | None,
) -> RuleVerdict:
    """One rule's verdict; `result` is its aggregated window, or None when its source failed."""
    action = rule.action
    rule_of = (index, rule.metric, action.direction, rule.operator, rule.threshold)
    if result is None:
        return RuleVerdict(*rule_of, None, RuleStatus.SOURCE_FAILED)
    if result.value is None:
        grains = (result.grains_with_data, result.grains_needed)
        return RuleVerdict(*rule_of, None, RuleStatus.INSUFFICIENT_DATA, grains=grains)
    observed = observed_value(rule, result.value, current)
    if not rule.operator.holds(observed, rule.threshold):
        return RuleVerdict(*rule_of, observed, RuleStatus.NOT_MET)
    cooldown = action.cooldown.total_seconds()
    if last_scale_at is not None and now < last_scale_at + cooldown:
        until = datetime.fromtimestamp(last_scale_at + cooldown, tz=UTC)
        return RuleVerdict(*rule_of, observed, RuleStatus.IN_COOLDOWN, cooldown_until=until)
    return RuleVerdict(*rule_of, observed, RuleStatus.FIRED, proposed_count(action, current))


@dataclass(frozen=True, slots=True)
class Flap:
    """An Increase rule that would fire right after a planned scale-in."""

    metric: str
    operator: Operator
    threshold: float
    estimate: float
    new: int

    @property
    def detail(self) -> str:
        return (
            f"scale-in to {self.new} would flap: {self.metric} estimate "
            f"{self.estimate:g} {self.operator.symbol} {self.threshold:g}"
        )


def would_flap(
    rules: Sequence[Rule | TargetRule],
    verdicts: Sequence[RuleVerdict],
    *,
    current: int,
    new: int,
    intensive: Mapping[int, bool],
) -> Flap | None:
    """The Increase rule that would fire right after scaling in from `current` to `new`, if any.

    Azure's flapping guard: a per-instance metric spreads over fewer instances after a scale-in,
    so it is estimated as `value x current / new`. Only intensive metrics (per-instance rules, or
    statistics of per-instance samples) move with the count; a total backlog does not.
    """
    for rule, seen in zip(rules, verdicts, strict=True):
        # A target rule never flaps: at the count it wants, it wants that count again.
        if not isinstance(rule, Rule) or rule.action.direction is not Direction.INCREASE:
            continue
        if seen.observed is None:
            continue
        if not intensive.get(seen.index, False):
            continue
        estimate = seen.observed * current / max(1, new)
        if rule.operator.holds(estimate, rule.threshold):
            return Flap(rule.metric, rule.operator, rule.threshold, estimate, new)
    return None
