"""The HPA's `behavior` on the count the rules recommend: stabilization windows, then rate policies.

As the HPA does (`stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`
in the kube-controller-manager's horizontal.go):

1. **Stabilization.** Every decision records the rules' recommendation. The count may go down
   only to the highest recommendation within the scale-down window, and up only to the lowest
   within the scale-up window (the current recommendation included). With no history (a fresh
   start, a wake), the current count counts as recommended now (`maybeInitScaleDownStabilization
   Window`): nothing scales in within the window of being first seen.
2. **Rate policies.** Each policy allows, from the count at the start of its period (the current
   count less the changes made within the period), `value` replicas (`Pods`) or `value` percent
   (`Percent`, rounded up for a scale-up and down for a scale-down) more, or fewer; `Max` picks
   the policy allowing the largest change, `Min` the smallest, `Disabled` allows none.

Where autozero differs: the percentages are computed in integers (the HPA's float gives 12 for
10 % of 10 above 10), and `Behavior` documents the defaults. Pure, like the rest of the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from autozero.engine.durations import format_duration
from autozero.engine.spec import PolicyType, ScalingRules, SelectPolicy
from autozero.engine.state import Timed


def remember(
    highs: tuple[Timed, ...],
    lows: tuple[Timed, ...],
    at: float,
    count: int,
    keep: tuple[float, float],
) -> tuple[tuple[Timed, ...], tuple[Timed, ...]]:
    """The recommendation queues with `count` recommended at `at`; `keep` is how long each
    must look back, (scale-up, scale-down) seconds. A recommendation dominated by a later one
    (lower than it in `highs`, higher in `lows`) can never again be the extreme of a window."""
    keep_low, keep_high = keep
    if keep_high > 0:
        cutoff = at - keep_high
        highs = (*(e for e in highs if e[0] > cutoff and e[1] > count), (at, count))
    else:
        highs = ()
    if keep_low > 0:
        cutoff = at - keep_low
        lows = (*(e for e in lows if e[0] > cutoff and e[1] < count), (at, count))
    else:
        lows = ()
    return highs, lows


def _first_within(queue: tuple[Timed, ...], cutoff: float) -> Timed | None:
    for entry in queue:
        if entry[0] > cutoff:
            return entry
    return None


@dataclass(frozen=True, slots=True)
class Stabilized:
    count: int
    held_by: Timed | None  # the recommendation that held the count back, if one did
    window: float  # the window it was in, seconds
    until: float  # when it leaves that window (inf: nothing held the count)
    down: bool = True  # whether it was the scale-down window

    @property
    def message(self) -> str:
        if self.held_by is None:
            return ""
        window = format_duration(timedelta(seconds=self.window))
        which, direction = ("highest", "scaleDown") if self.down else ("lowest", "scaleUp")
        return (
            f"the {which} recommendation within the {window} {direction} stabilization window "
            f"was {self.held_by[1]}"
        )


def stabilize(
    current: int,
    recommended: int,
    highs: tuple[Timed, ...],
    lows: tuple[Timed, ...],
    *,
    now: float,
    windows: tuple[float, float],
) -> Stabilized:
    """The count within the stabilization windows (scale-up, scale-down seconds), from the
    queues as they were before this decision's recommendation is added."""
    up_window, down_window = windows
    high_entry = _first_within(highs, now - down_window) if down_window > 0 else None
    low_entry = _first_within(lows, now - up_window) if up_window > 0 else None
    ceiling = max(recommended, high_entry[1]) if high_entry else recommended
    floor = min(recommended, low_entry[1]) if low_entry else recommended
    count = max(current, floor)
    count = min(count, ceiling)
    if count > recommended and high_entry is not None:
        return Stabilized(count, high_entry, down_window, high_entry[0] + down_window, True)
    if count < recommended and low_entry is not None:
        return Stabilized(count, low_entry, up_window, low_entry[0] + up_window, False)
    return Stabilized(count, None, 0.0, math.inf)


@dataclass(frozen=True, slots=True)
class Limited:
    count: int
    limit: int | None  # the rate policies' bound, when it held the count back
    until: float  # the earliest instant a change made within a period leaves it (inf: none)


def _proposal(start: int, value: int, kind: PolicyType, up: bool) -> int:
    if kind is PolicyType.PODS:
        return start + value if up else start - value
    if up:
        return -(-start * (100 + value) // 100)  # ceil, in integers
    return int(start * (100 - value) / 100)  # truncated, as Go's int32() does


def rate_limit(
    current: int,
    desired: int,
    events: tuple[Timed, ...],
    rules: ScalingRules | None,
    *,
    now: float,
) -> Limited:
    """`desired` within the rate policies of its direction (`rules`; None or no policy: no
    limit). `until` is set whenever a limit was computed from changes within a period, since
    their leaving may raise or lower it."""
    if rules is None or not rules.limited or desired == current:
        return Limited(desired, None, math.inf)
    up = desired > current
    if rules.select_policy is SelectPolicy.DISABLED:
        return Limited(current, current, math.inf)
    proposals: list[int] = []
    until = math.inf
    for policy in rules.policies:
        period = policy.period.total_seconds()
        cutoff = now - period
        changed = 0
        for at, change in events:
            if at > cutoff:
                changed += change
                until = min(until, at + period)
        proposals.append(_proposal(current - changed, policy.value, policy.type, up))
    widest = rules.select_policy is SelectPolicy.MAX
    if up:
        limit = max(current, max(proposals) if widest else min(proposals))
        count = min(desired, limit)
    else:
        limit = min(current, min(proposals) if widest else max(proposals))
        count = max(desired, limit)
    return Limited(count, limit if count != desired else None, until)


def describe_rules(rules: ScalingRules) -> str:
    """The rate policies in a few words: "4 Pods or 100 Percent per 15s (Max)"."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return "selectPolicy Disabled"
    parts = [f"{p.value} {p.type.value} per {format_duration(p.period)}" for p in rules.policies]
    return f"{', '.join(parts)} ({rules.select_policy.value})"
