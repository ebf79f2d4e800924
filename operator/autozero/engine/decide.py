"""decide(): one group, one cycle. Pure: everything it knows comes in as arguments.

Order of evaluation (docs/design.md §3): profile -> record samples -> activation (wake / sleep) ->
rules (threshold rules: any Increase, or all Decrease; target rules: the count each wants) ->
flapping guard -> behavior (stabilization windows, rate policies) -> clamp to the profile's
bounds -> safety (a failing source never lowers the count; fallback raises a Degraded group).
The caller applies the decision (or not: paused, dry run) and, once applied, calls
`GroupState.after_scale` so the cooldowns and the rate policies start from the real change.

How threshold and target rules combine (docs/concepts.md has worked examples): the count goes
up to the largest count asked by a fired Increase rule or wanted by a target rule above the
current count (ANY); it goes down only when every Decrease rule fired and every target rule
wants fewer (ALL), to the largest of the counts they ask (the smallest step). A sleeping group
that wakes on pending work wakes to its wake count, or to what its target rules want if more,
unless `behavior.scaleUp` limits the rate (then the rules take it from the wake count).

Evaluate on change, not on every tick. The contract with the caller:

- Call `decide` on new input (a read whose values differ from the last one, a changed workload
  count or HPA, an applied scale), at the decision's `deadline`, and on every read while its
  `every_read_matters` is True. Keep the state it returns.
- Otherwise call `record` for each read: it keeps the sample windows and failure counts exactly
  as `decide` would, so a group that wakes finds its rules' windows full.

`deadline` is the earliest instant after `now` at which, with no new input, the decision (action,
target, reason, profile, rule verdicts; not the message, which may say "idle 3m of 10m") may
differ: the next profile boundary, the end of `idleFor`, a running cooldown's end, a sample
crossing a grain of a window it read, a recommendation that holds the count leaving its
stabilization window, a scale event leaving a rate policy's period. None: never, without new
input. It may be early (that costs one evaluation), never late. `decide` records its
`observations` as a read at `now` (and the rules' recommendation): at the deadline, pass a fresh
read rather than replaying the last one, or it counts twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from autozero.engine.activation import (
    Activity,
    describe_activity,
    next_idle_since,
    pending_note,
    read_activity,
)
from autozero.engine.aggregate import Aggregate, Window, WindowCache
from autozero.engine.behavior import describe_rules, rate_limit, remember, stabilize
from autozero.engine.decision import Action, Decision, Reason, RuleStatus, RuleVerdict
from autozero.engine.durations import format_duration
from autozero.engine.readings import Observation, Reading
from autozero.engine.rules import evaluate_rule, would_flap
from autozero.engine.schedule import active_profile, boundary_after
from autozero.engine.spec import (
    Capacity,
    Direction,
    GroupSpec,
    Profile,
    Rule,
    Statistic,
    TargetRule,
)
from autozero.engine.state import GroupState
from autozero.engine.tracking import evaluate_target

_NOT_INTENSIVE = (Statistic.SUM, Statistic.COUNT)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Evaluation:
    decision: Decision
    state: GroupState  # the state to keep; call `after_scale` on it once the change is applied


def record(
    spec: GroupSpec, state: GroupState, observations: Mapping[str, Observation], now: datetime
) -> GroupState:
    """The state after one read that needs no decision: its samples appended (those too old for
    any window dropped) and its failures counted, exactly as `decide` does; nothing else moves
    (idle tracking, cooldowns, recommendations and scale events change only through `decide`
    and `after_scale`)."""
    windows, failures, _ = _record(spec, state, observations, now.timestamp())
    return GroupState(
        windows,
        failures,
        state.idle_since,
        state.last_scale_at,
        state.highs,
        state.lows,
        state.scale_events,
        state.finishing,
    )


def _record(
    spec: GroupSpec, state: GroupState, observations: Mapping[str, Observation], now: float
) -> tuple[dict[str, Window], dict[str, int], tuple[str, ...]]:
    """Append this cycle's samples (dropping those too old for any window) and count failures."""
    windows: dict[str, Window] = {}
    failures: dict[str, int] = {}
    failing: list[str] = []
    for metric in spec.metrics:
        seen = observations.get(metric)
        keep_seconds = spec.history_seconds[metric]
        kept = state.windows.get(metric)
        if kept is not None:
            kept = kept.since(now - keep_seconds)
        if isinstance(seen, Reading):
            failures[metric] = 0
            if keep_seconds > 0:
                kept = (kept or Window()).add(now, float(seen.value), seen.per_instance)
        else:
            failures[metric] = state.failures.get(metric, 0) + 1
            failing.append(metric)
        if kept:
            windows[metric] = kept
    return windows, failures, tuple(failing)


def _wake_count(capacity: Capacity) -> int:
    return max(1, capacity.minimum, min(capacity.default, capacity.maximum))


def _down_voters(verdicts: tuple[RuleVerdict, ...]) -> list[RuleVerdict]:
    """The verdicts that must all agree before a scale-in: Decrease rules and target rules."""
    return [v for v in verdicts if v.direction is Direction.DECREASE or v.target is not None]


def _hold_reason(verdicts: tuple[RuleVerdict, ...]) -> tuple[Reason, str]:
    """Why no rule moved the count: the most telling verdict, in this order of precedence."""
    if not verdicts:
        return Reason.NO_RULES, "the active profile has no rules"
    for status, reason in (
        (RuleStatus.IN_COOLDOWN, Reason.IN_COOLDOWN),
        (RuleStatus.SOURCE_FAILED, Reason.SOURCE_FAILED),
        (RuleStatus.INSUFFICIENT_DATA, Reason.INSUFFICIENT_DATA),
    ):
        for verdict in verdicts:
            if verdict.status is status:
                return reason, verdict.detail
    downs = _down_voters(verdicts)
    if any(v.fired for v in downs):
        unmet = next(v for v in downs if not v.fired)
        if any(v.target is not None for v in downs):
            return (
                Reason.NOT_ALL_DECREASE_RULES_FIRED,
                f"not every Decrease and target rule agrees to scale in ({unmet.detail})",
            )
        return (
            Reason.NOT_ALL_DECREASE_RULES_FIRED,
            f"not every Decrease rule fired ({unmet.detail})",
        )
    tracking = [v.detail for v in verdicts if v.target is not None]
    return Reason.NO_RULE_FIRED, "; ".join(tracking) or "no rule fired"


def decide(
    spec: GroupSpec,
    state: GroupState,
    observations: Mapping[str, Observation],
    *,
    now: datetime,
    current: int,
) -> Evaluation:
    """Decide `spec`'s replica count at `now` (aware), given its count and this cycle's reads."""
    t = now.timestamp()
    windows, failures, failing = _record(spec, state, observations, t)
    degraded = tuple(m for m in failing if failures[m] >= spec.failure.threshold)
    active = active_profile(spec, now)
    profile = active.profile
    capacity = spec.capacity_of(profile)
    activity = read_activity(spec.activation, observations)
    idle_since = (
        next_idle_since(
            activity, any_source_failing=bool(failing), previous=state.idle_since, now=t
        )
        if current > 0
        else None
    )
    events = _recent(state.scale_events, t - spec.rate_seconds)
    # A scale-out whose writes a restart interrupted (`GroupState.finishing`), still short.
    finishing = state.finishing if 0 < current < (state.finishing or 0) else None
    new_state = GroupState(
        windows,
        failures,
        idle_since,
        state.last_scale_at,
        state.highs,
        state.lows,
        events,
        finishing,
    )
    # A failing source not yet Degraded: its next failed read may make the group Degraded.
    counting_failures = len(degraded) < len(failing)

    def outcome(
        target: int,
        reason: Reason,
        message: str,
        verdicts: tuple[RuleVerdict, ...] = (),
        *,
        soonest: float = math.inf,
        read_windows: bool = False,
        recommended: int | None = None,
    ) -> Evaluation:
        decision = Decision(
            group=spec.name,
            at=now,
            profile=profile.name,
            current=current,
            target=target,
            action=Action.between(current, target),
            reason=reason,
            message=message,
            rules=verdicts,
            pending=activity.pending,
            in_flight=activity.in_flight,
            failing=failing,
            degraded=degraded,
            idle_since=None
            if idle_since is None
            else datetime.fromtimestamp(idle_since, now.tzinfo),
            deadline=_deadline(boundary_after(spec, now, active), soonest, now),
            every_read_matters=read_windows or counting_failures,
            recommended=recommended,
        )
        return Evaluation(decision, new_state)

    fallback = spec.failure.fallback_replicas if degraded else None
    if current == 0:
        count, why, says, seen, when, read = _asleep(
            spec, profile, capacity, activity, fallback, degraded, windows, failing, t
        )
        return outcome(count, why, says, seen, soonest=when, read_windows=read)

    # Awake. Sleep first: it needs idleness for idle_for, a profile that allows 0, no fallback.
    activation = spec.activation
    soonest = math.inf
    if (
        activation is not None
        and idle_since is not None
        and capacity.minimum == 0
        and fallback is None
    ):
        idle_for = activation.idle_for.total_seconds()
        if t - idle_since >= idle_for:
            return outcome(
                0,
                Reason.IDLE,
                f"idle {format_duration(activation.idle_for)}: "
                f"{describe_activity(activation, activity)}",
            )
        soonest = idle_since + idle_for  # the sleep, unless new input comes first

    floor = max(1, capacity.minimum)
    ceiling = max(floor, capacity.maximum)
    note = _activity_note(spec, activity, idle_since, t, capacity)

    read_windows = False
    recommended: int | None = None
    verdicts: tuple[RuleVerdict, ...] = ()
    if spec.handoff:
        target, reason, message = current, Reason.HANDOFF, "a native autoscaler owns the count"
    else:
        windows_at_now = WindowCache(windows, t)
        verdicts, target, reason, message = _apply_rules(
            profile, windows_at_now, failing, current, state.last_scale_at, t, floor, ceiling
        )
        soonest = min(soonest, windows_at_now.next_change(spec.history_seconds))
        read_windows = windows_at_now.consulted
        if state.last_scale_at is not None:
            for verdict in verdicts:
                rule = profile.rules[verdict.index]
                if verdict.status is RuleStatus.IN_COOLDOWN and isinstance(rule, Rule):
                    cooldown = rule.action.cooldown.total_seconds()
                    soonest = min(soonest, state.last_scale_at + cooldown)
        # Behavior: the rules' recommendation is stabilized, then rate-limited.
        recommended = target
        keep = spec.recommendation_seconds
        if keep[0] > 0 or keep[1] > 0:
            past_highs = state.highs
            if not past_highs and keep[1] > 0:
                # No history (a fresh start, or just woken): as the HPA does when it first sees
                # a workload, the current count counts as recommended now.
                past_highs = ((t, current),)
            stable = stabilize(
                current,
                target,
                past_highs,
                state.lows,
                now=t,
                windows=spec.stabilization_of(profile),
            )
            highs, lows = remember(past_highs, state.lows, t, target, keep)
            new_state = GroupState(
                windows, failures, idle_since, state.last_scale_at, highs, lows, events, finishing
            )
            if stable.held_by is not None:
                soonest = min(soonest, stable.until)
                read_windows = True  # the recommendations read are refreshed by every decision
                if stable.count != target:
                    way = "scale-in" if target < current else "scale-out"
                    message = (
                        f"{way} to {target} held at {stable.count}: {stable.message}; {message}"
                    )
                    target, reason = stable.count, Reason.STABILIZED
        rules = spec.behavior.scale_up if target > current else spec.behavior.scale_down
        if rules is not None and target != current:
            limited = rate_limit(current, target, events, rules, now=t)
            soonest = min(soonest, limited.until)
            if limited.limit is not None:
                way, which = (
                    ("scale-out", "scaleUp") if target > current else ("scale-in", "scaleDown")
                )
                message = (
                    f"{way} to {target} limited to {limited.count} by behavior.{which} "
                    f"({describe_rules(rules)}); {message}"
                )
                target, reason = limited.count, Reason.RATE_LIMITED

    # Clamp to the active profile's bounds.
    if target > ceiling:
        target, reason = ceiling, Reason.SCHEDULE_MAXIMUM
        message = f"lowered to the maximum {ceiling} of profile {profile.name}"
    elif target < floor:
        target, reason = floor, Reason.SCHEDULE_MINIMUM
        message = f"raised to the minimum {floor} of profile {profile.name}"
    # Safety: a failing source never lowers the count; a Degraded group rises to its fallback.
    if target < current and failing:
        target, reason = current, Reason.SOURCE_FAILED
        message = f"not scaling in while {', '.join(failing)} cannot be read"
    if fallback is not None and target < min(fallback, ceiling):
        target, reason = min(fallback, ceiling), Reason.FALLBACK
        message = (
            f"fallback to {target}: {', '.join(degraded)} failing "
            f"for {spec.failure.threshold}+ reads"
        )
    if finishing is not None and target == current:
        # Held where a restart left a scale-out half done (the pool resumed, the rest not yet
        # created): the count it was going to, which no rule would ask for again.
        target, reason = min(finishing, ceiling), Reason.UNFINISHED
        message = f"finishing the scale-out to {finishing} a restart interrupted at {current}"
    if target == current and note:
        message = f"{message}; {note}"
    return outcome(
        target,
        reason,
        message,
        verdicts,
        soonest=soonest,
        read_windows=read_windows,
        recommended=recommended,
    )


def _recent(events: tuple[tuple[float, int], ...], cutoff: float) -> tuple[tuple[float, int], ...]:
    """The scale events newer than `cutoff` (those older leave every rate policy's period)."""
    if not events or events[0][0] > cutoff:
        return events
    return tuple(e for e in events if e[0] > cutoff)


def _deadline(boundary: datetime | None, soonest: float, now: datetime) -> datetime | None:
    """The earlier of a profile boundary and `soonest` (unix seconds), strictly after `now`, in
    UTC: a caller comparing it with a `now` in the same zone would compare wall clocks, blind to
    DST's fold, and wall-clock arithmetic would slip by an hour.

    `soonest` is rounded down to the microsecond, never up: a deadline may be early, not late.
    """
    if boundary is None and soonest == math.inf:
        return None
    at = boundary
    if soonest != math.inf:
        instant = datetime.fromtimestamp(soonest, UTC)
        if instant.timestamp() > soonest:
            instant -= _MICROSECOND
        if at is None or instant < at:
            at = instant
    assert at is not None
    if at <= now:
        # A change within the microsecond after `now`: the next instant a datetime can name.
        at = now.astimezone(UTC) + _MICROSECOND
    return at


_Asleep = tuple[int, Reason, str, tuple[RuleVerdict, ...], float, bool]


def _asleep(
    spec: GroupSpec,
    profile: Profile,
    capacity: Capacity,
    activity: Activity,
    fallback: int | None,
    degraded: tuple[str, ...],
    windows: Mapping[str, Window],
    failing: tuple[str, ...],
    now: float,
) -> _Asleep:
    """A group at zero: fallback, pending work or a schedule minimum wakes it; else it sleeps.
    Pending work wakes it to what its target rules want when that is more than the wake count
    (they read their windows, recorded while it slept), unless scale-up is rate-limited."""
    if fallback is not None and fallback > 0:
        target = capacity.clamp(max(1, fallback))
        message = f"fallback to {target}: {', '.join(degraded)} failing"
        return target, Reason.FALLBACK, message, (), math.inf, False
    activation = spec.activation
    if activation is not None and activity.work_pending:
        message = f"work pending: {describe_activity(activation, activity)}"
        count = _wake_count(capacity)
        scale_up = spec.behavior.scale_up
        tracking = [
            (index, rule)
            for index, rule in enumerate(profile.rules)
            if isinstance(rule, TargetRule)
        ]
        if spec.handoff or not tracking or (scale_up is not None and scale_up.limited):
            return count, Reason.WORK_PENDING, message, (), math.inf, False
        windows_at_now = WindowCache(windows, now)
        verdicts = tuple(
            evaluate_target(
                index,
                rule,
                result=_aggregate(rule, windows_at_now, failing),
                current=0,
            )
            for index, rule in tracking
        )
        soonest = windows_at_now.next_change(spec.history_seconds)
        wanted = max((v.proposed for v in verdicts if v.fired and v.proposed), default=0)
        if wanted > count:
            count = min(wanted, max(count, capacity.maximum))
            wants = "; ".join(v.detail for v in verdicts if v.fired)
            message = f"{message}; {wants}"
        return count, Reason.WORK_PENDING, message, verdicts, soonest, True
    if capacity.minimum > 0:
        message = f"raised to the minimum {capacity.minimum}"
        return capacity.minimum, Reason.SCHEDULE_MINIMUM, message, (), math.inf, False
    if activation is None:
        message = "asleep: the group has no activation metric"
        return 0, Reason.ASLEEP, message, (), math.inf, False
    if activity.failed is not None:
        message = f"asleep: cannot read {activation.metric} ({activity.failed.message})"
        return 0, Reason.SOURCE_FAILED, message, (), math.inf, False
    message = f"asleep: {describe_activity(activation, activity)}"
    return 0, Reason.ASLEEP, message, (), math.inf, False


def _aggregate(
    rule: Rule | TargetRule, windows_at_now: WindowCache, failing: tuple[str, ...]
) -> Aggregate | None:
    """The rule's aggregated window, or None when its source failed this cycle."""
    if rule.metric in failing:
        return None
    return windows_at_now.get(
        rule.metric,
        rule.time_grain.total_seconds(),
        rule.grains,
        rule.statistic,
        rule.time_aggregation,
    )


def _verdict(
    index: int,
    rule: Rule | TargetRule,
    windows_at_now: WindowCache,
    failing: tuple[str, ...],
    current: int,
    last_scale_at: float | None,
    now: float,
) -> RuleVerdict:
    result = _aggregate(rule, windows_at_now, failing)
    if isinstance(rule, TargetRule):
        return evaluate_target(index, rule, result=result, current=current)
    return evaluate_rule(
        index, rule, result=result, now=now, current=current, last_scale_at=last_scale_at
    )


def _wants(verdict: RuleVerdict, current: int) -> int:
    """The count a fired verdict asks for (0 is a count: an ExactCount 0, a target wanting 0)."""
    return current if verdict.proposed is None else verdict.proposed


def _apply_rules(
    profile: Profile,
    windows_at_now: WindowCache,
    failing: tuple[str, ...],
    current: int,
    last_scale_at: float | None,
    now: float,
    floor: int,
    ceiling: int,
) -> tuple[tuple[RuleVerdict, ...], int, Reason, str]:
    verdicts = tuple(
        _verdict(index, rule, windows_at_now, failing, current, last_scale_at, now)
        for index, rule in enumerate(profile.rules)
    )
    # Out: ANY fired Increase rule, or any target rule wanting more; the largest count wins.
    ups = [
        v
        for v in verdicts
        if v.fired and (v.direction is Direction.INCREASE or _wants(v, current) > current)
    ]
    if ups:
        wanted = max(_wants(v, current) for v in ups)
        message = "; ".join(v.detail for v in ups)
        if min(wanted, ceiling) <= current:
            return verdicts, current, Reason.AT_BOUND, f"{message}; already at maximum {ceiling}"
        return verdicts, min(wanted, ceiling), Reason.RULE_FIRED, message

    # In: ALL Decrease rules fired and ALL target rules want fewer; the smallest step wins.
    downs = _down_voters(verdicts)
    if downs and all(v.fired for v in downs):
        # The smallest step: the largest of the counts the rules ask for.
        wanted = max(floor, max(_wants(v, current) for v in downs))
        message = "; ".join(v.detail for v in downs)
        if wanted >= current:
            return verdicts, current, Reason.AT_BOUND, f"{message}; already at minimum {floor}"
        if failing:
            return (
                verdicts,
                current,
                Reason.SOURCE_FAILED,
                (f"not scaling in while {', '.join(failing)} cannot be read"),
            )
        rules = profile.rules
        intensive = {
            v.index: rule.per_instance
            or (rule.statistic not in _NOT_INTENSIVE and windows_at_now.instanced(rule.metric))
            for rule, v in zip(rules, verdicts, strict=True)
            if isinstance(rule, Rule) and rule.action.direction is Direction.INCREASE
        }
        # Flapping guard: try the asked count, then ever smaller steps; hold if all would flap.
        first_flap = would_flap(rules, verdicts, current=current, new=wanted, intensive=intensive)
        if first_flap is None:
            return verdicts, wanted, Reason.ALL_DECREASE_RULES_FIRED, message
        for candidate in range(wanted + 1, current):
            if (
                would_flap(rules, verdicts, current=current, new=candidate, intensive=intensive)
                is None
            ):
                return (
                    verdicts,
                    candidate,
                    Reason.ALL_DECREASE_RULES_FIRED,
                    (f"{message}; stepped to {candidate} ({first_flap.detail})"),
                )
        return verdicts, current, Reason.WOULD_FLAP, first_flap.detail
    reason, message = _hold_reason(verdicts)
    return verdicts, current, reason, message


def _activity_note(
    spec: GroupSpec, activity: Activity, idle_since: float | None, now: float, capacity: Capacity
) -> str:
    """Why the group is not going to zero yet, for Hold messages of an awake group."""
    activation = spec.activation
    if activation is None:
        return ""
    if activity.failed is not None:
        return f"{activation.metric} unreadable"
    if capacity.minimum > 0:
        return f"profile minimum {capacity.minimum} keeps the group awake"
    if (activity.in_flight or 0) > 0 or activity.work_pending:
        return pending_note(activation, activity)
    if idle_since is not None:
        return (
            f"idle {format_duration_seconds(now - idle_since)} of "
            f"{format_duration(activation.idle_for)}"
        )
    return ""


def format_duration_seconds(seconds: float) -> str:
    return format_duration(timedelta(seconds=round(max(0.0, seconds))))
