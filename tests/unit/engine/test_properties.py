"""Properties that hold for every policy and every signal, checked with hypothesis."""

from __future__ import annotations

import json
from datetime import timedelta

from autozero.engine.decide import decide
from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.spec import (
    ActionType,
    Activation,
    Capacity,
    Direction,
    FailurePolicy,
    GroupSpec,
    Operator,
    Profile,
    Rule,
    ScaleAction,
    Statistic,
    TimeAggregation,
)
from autozero.engine.state import GroupState
from hypothesis import given, settings
from hypothesis import strategies as st
from support.engine import T0

METRICS = ("backlog", "cpu")


@st.composite
def rules(draw: st.DrawFn) -> Rule:
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
