"""Properties that hold for every policy and every signal, checked with hypothesis."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import timedelta

from autozero.engine.decide import decide
from autozero.engine.decision import Action
from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.spec import (
    ActionType,
    Activation,
    Behavior,
    Capacity,
    Direction,
    FailurePolicy,
    GroupSpec,
    Operator,
    PolicyType,
    Profile,
    RatePolicy,
    Rule,
    ScaleAction,
    ScalingRules,
    SelectPolicy,
    Statistic,
    TargetKind,
    TargetRule,
    TimeAggregation,
    TrackingTarget,
)
from autozero.engine.state import GroupState
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.engine import T0

METRICS = ("backlog", "cpu")


@st.composite
def target_rules(draw: st.DrawFn) -> TargetRule:
    grain = draw(st.sampled_from([15, 30, 60]))
    return TargetRule(
        metric=draw(st.sampled_from(METRICS)),
        time_grain=timedelta(seconds=grain),
        statistic=draw(st.sampled_from(list(Statistic))),
        time_window=timedelta(seconds=grain * draw(st.integers(1, 3))),
        time_aggregation=draw(st.sampled_from(list(TimeAggregation))),
        target=TrackingTarget(
            draw(st.sampled_from(list(TargetKind))),
            draw(st.sampled_from([0.5, 1, 5, 10, 50])),
            draw(st.sampled_from([0.0, 0.1, 0.3])),
        ),
    )


@st.composite
def scaling_rules(draw: st.DrawFn) -> ScalingRules:
    policies = st.builds(
        RatePolicy,
        st.sampled_from(list(PolicyType)),
        st.sampled_from([1, 2, 4, 50, 100]),
        st.sampled_from([15, 30, 60]).map(lambda s: timedelta(seconds=s)),
    )
    return ScalingRules(
        timedelta(seconds=draw(st.sampled_from([0, 0, 30, 60, 300]))),
        draw(st.sampled_from(list(SelectPolicy))),
        tuple(draw(st.lists(policies, max_size=2))),
    )


def behaviors() -> st.SearchStrategy[Behavior]:
    return st.builds(Behavior, st.none() | scaling_rules(), st.none() | scaling_rules())


@st.composite
def rules(draw: st.DrawFn) -> Rule | TargetRule:
    if draw(st.integers(0, 2)) == 0:
        return draw(target_rules())
    grain = draw(st.sampled_from([30, 60]))
    return Rule(
        metric=draw(st.sampled_from(METRICS)),
        time_grain=timedelta(seconds=grain),
        statistic=draw(st.sampled_from(list(Statistic))),
        time_window=timedelta(seconds=grain * draw(st.integers(1, 4))),
        time_aggregation=draw(st.sampled_from(list(TimeAggregation))),
        operator=draw(st.sampled_from(list(Operator))),
        threshold=draw(st.sampled_from([0, 1, 5, 10, 50])),
        per_instance=draw(st.booleans()),
        action=ScaleAction(
            direction=draw(st.sampled_from(list(Direction))),
            type=draw(st.sampled_from(list(ActionType))),
            value=draw(st.integers(1, 60)),
            cooldown=timedelta(seconds=draw(st.sampled_from([0, 60, 300]))),
        ),
    )


@st.composite
def specs(draw: st.DrawFn) -> GroupSpec:
    maximum = draw(st.integers(1, 12))
    minimum = draw(st.integers(0, maximum))
    default = draw(st.integers(minimum, maximum))
    fallback = draw(st.none() | st.integers(0, 15))
    return GroupSpec(
        name="g",
        capacity=Capacity(minimum, maximum, default),
        profiles=(Profile("default", rules=tuple(draw(st.lists(rules(), max_size=4)))),),
        activation=draw(
            st.none()
            | st.builds(
                Activation,
                st.just("backlog"),
                st.sampled_from([timedelta(0), timedelta(minutes=2)]),
                st.sampled_from([0.0, 0.0, 5.0]),  # the activation threshold
            )
        ),
        failure=FailurePolicy(threshold=draw(st.integers(1, 3)), fallback_replicas=fallback),
        handoff=draw(st.booleans()),
        behavior=draw(behaviors()),
    )


def observations() -> st.SearchStrategy[dict[str, Observation]]:
    reading = st.builds(
        Reading,
        value=st.integers(0, 100).map(float),
        pending=st.none() | st.integers(0, 100).map(float),
        in_flight=st.none() | st.integers(0, 5).map(float),
        per_instance=st.none()
        | st.dictionaries(
            st.sampled_from(["a", "b", "c"]), st.integers(0, 100).map(float), min_size=1
        ),
    )
    observation = st.one_of(reading, reading, st.builds(Failure, st.just("down")))
    return st.fixed_dictionaries(dict.fromkeys(METRICS, observation))


@settings(max_examples=300, deadline=None)
@given(
    spec=specs(),
    trace=st.lists(observations(), min_size=1, max_size=40),
    start=st.integers(0, 12),
    follow=st.booleans(),
)
def test_invariants_over_random_traces(
    spec: GroupSpec, trace: list[dict[str, Observation]], start: int, follow: bool
) -> None:
    state = GroupState()
    current = start
    capacity = spec.capacity
    for step, reads in enumerate(trace):
        now = T0 + timedelta(seconds=15 * step)
        evaluation = decide(spec, state, reads, now=now, current=current)
        decision = evaluation.decision
        target = decision.target
        failing = any(isinstance(reads[m], Failure) for m in spec.metrics)

        # A moved count always lands inside the profile's bounds (zero only by sleeping).
        if target != current:
            assert target == 0 or max(1, capacity.minimum) <= target <= capacity.maximum, decision
        # A failing source of the group never lowers the count.
        if failing:
            assert target >= current, decision
        # Never to zero while jobs are in flight.
        backlog = reads["backlog"]
        if current > 0 and isinstance(backlog, Reading) and (backlog.in_flight or 0) > 0:
            assert target > 0, decision
        # Deterministic: the same inputs give the same decision and state.
        again = decide(spec, state, reads, now=now, current=current)
        assert again == evaluation
        # Serialised state decides exactly as the original.
        restored = GroupState.from_json(json.loads(json.dumps(state.to_json())))
        assert decide(spec, restored, reads, now=now, current=current).decision == decision

        state = evaluation.state
        if follow and target != current:
            state = state.after_scale(at=now, was=current, now_is=target)
            current = target


@settings(max_examples=100, deadline=None)
@given(spec=specs(), trace=st.lists(observations(), min_size=1, max_size=60))
def test_windows_stay_bounded_by_the_longest_window(
    spec: GroupSpec, trace: list[dict[str, Observation]]
) -> None:
    state = GroupState()
    for step, reads in enumerate(trace):
        now = T0 + timedelta(seconds=15 * step)
        state = decide(spec, state, reads, now=now, current=1).state
        for metric, window in state.windows.items():
            oldest = now.timestamp() - spec.history_seconds[metric]
            assert all(t > oldest for t in window.times)
            assert list(window.times) == sorted(window.times)
            assert len(window.values) == len(window.times)
            assert len(window.instances) in (0, len(window.times))
            # At most one poll per 15 s, each with at most three instances.
            assert len(window) <= 3 * (spec.history_seconds[metric] / 15 + 1)


@settings(max_examples=200, deadline=None)
@given(
    rule=target_rules(),
    behavior=behaviors(),
    value=st.integers(0, 2000),
    start=st.integers(1, 12),
    minimum=st.integers(1, 3),
    maximum=st.integers(3, 40),
)
def test_a_steady_total_settles_at_ceil_value_over_average_value(
    rule: TargetRule, behavior: Behavior, value: int, start: int, minimum: int, maximum: int
) -> None:
    """AverageValue on a steady value V: a settled group runs ceil(V / target), within bounds.
    (Tolerance 0: within a tolerance, a count near the target is settled too. Not Disabled: a
    disabled direction never settles.)"""
    # Aggregations that keep a steady value (Count counts samples, Total adds grains).
    assume(rule.statistic is not Statistic.COUNT)
    assume(rule.time_aggregation not in (TimeAggregation.COUNT, TimeAggregation.TOTAL))
    rule = replace(
        rule,
        metric="backlog",
        target=TrackingTarget(TargetKind.AVERAGE_VALUE, rule.target.value, 0.0),
    )
    for direction in (behavior.scale_up, behavior.scale_down):
        assume(direction is None or direction.select_policy is not SelectPolicy.DISABLED)
    spec = GroupSpec(
        "g", Capacity(minimum, maximum, minimum), (Profile("default", (rule,)),), behavior=behavior
    )
    reads: dict[str, Observation] = {"backlog": Reading(float(value))}
    state = GroupState()
    current = min(start, maximum)
    now = T0
    # Windows fill within 3 minutes, stabilization within 5, rate policies within a minute a
    # step: an hour settles any of them.
    for _ in range(240):
        evaluation = decide(spec, state, reads, now=now, current=current)
        state = evaluation.state
        if evaluation.decision.target != current:
            state = state.after_scale(at=now, was=current, now_is=evaluation.decision.target)
            current = evaluation.decision.target
        now += timedelta(seconds=15)
    expected = max(minimum, min(maximum, math.ceil(value / rule.target.value - 1e-9)))
    assert current == expected


@st.composite
def tracking_specs(draw: st.DrawFn) -> GroupSpec:
    """Awake groups driven by target rules (and maybe a threshold rule), behavior drawn."""
    rule_list = draw(st.lists(target_rules(), min_size=1, max_size=2))
    rule_list += draw(st.lists(rules(), max_size=1))
    maximum = draw(st.integers(2, 30))
    return GroupSpec(
        "g",
        Capacity(1, maximum, 1),
        (Profile("default", tuple(rule_list)),),
        behavior=draw(behaviors()),
    )


def changing_reads() -> st.SearchStrategy[dict[str, Observation]]:
    value = st.sampled_from([0.0, 1.0, 4.0, 20.0, 100.0, 400.0]).map(Reading)
    return st.fixed_dictionaries(dict.fromkeys(METRICS, value))


@settings(max_examples=300, deadline=None)
@given(
    spec=tracking_specs(),
    trace=st.lists(changing_reads(), min_size=1, max_size=80),
    start=st.integers(1, 12),
)
def test_stabilization_never_goes_below_a_recent_higher_recommendation(
    spec: GroupSpec, trace: list[dict[str, Observation]], start: int
) -> None:
    """A scale-in never goes below a recommendation of the rules made within the scale-down
    stabilization window, nor below this decision's own."""
    state = GroupState()
    current = min(start, spec.capacity.maximum)
    window = spec.stabilization_of(spec.default_profile)[1]
    made: list[tuple[float, int]] = []
    for step, reads in enumerate(trace):
        now = T0 + timedelta(seconds=15 * step)
        t = now.timestamp()
        evaluation = decide(spec, state, reads, now=now, current=current)
        decision, state = evaluation.decision, evaluation.state
        assert decision.recommended is not None
        if decision.action is Action.SCALE_IN:
            recent = [count for at, count in made if at > t - window]
            assert decision.target >= max([decision.recommended, *recent]), (decision, made)
        made.append((t, decision.recommended))
        if decision.target != current:
            state = state.after_scale(at=now, was=current, now_is=decision.target)
            current = decision.target
