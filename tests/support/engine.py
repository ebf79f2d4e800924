"""Short builders for engine specs, so each table row in the tests reads as the policy it is."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from autozero.engine.decide import Evaluation, decide
from autozero.engine.decision import Decision
from autozero.engine.readings import Observation
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

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def rule(
    metric: str,
    operator: str,
    threshold: float,
    direction: str = "Increase",
    *,
    change: float = 1,
    type: str = "ChangeCount",
    cooldown: timedelta = timedelta(minutes=5),
    grain: timedelta = timedelta(minutes=1),
    window: timedelta = timedelta(minutes=5),
    statistic: str = "Average",
    aggregation: str = "Average",
    per_instance: bool = False,
) -> Rule:
    return Rule(
        metric=metric,
        time_grain=grain,
        statistic=Statistic(statistic),
        time_window=window,
        time_aggregation=TimeAggregation(aggregation),
        operator=Operator(operator),
        threshold=threshold,
        per_instance=per_instance,
        action=ScaleAction(Direction(direction), ActionType(type), change, cooldown),
    )


def group(
    rules: Iterable[Rule] = (),
    *,
    minimum: int = 0,
    maximum: int = 10,
    default: int = 1,
    activation: str | None = "backlog",
    idle_for: timedelta = timedelta(minutes=30),
    profiles: Iterable[Profile] = (),
    failure: FailurePolicy | None = None,
    handoff: bool = False,
) -> GroupSpec:
    all_profiles = (*profiles, Profile(name="default", rules=tuple(rules)))
    return GroupSpec(
        name="workers",
        capacity=Capacity(minimum, maximum, default),
        profiles=all_profiles,
        activation=None if activation is None else Activation(activation, idle_for),
        failure=failure or FailurePolicy(),
        handoff=handoff,
    )


def steady(
    spec: GroupSpec,
    observations: dict[str, Observation],
    *,
    current: int,
    duration: timedelta = timedelta(minutes=5),
    step: timedelta = timedelta(seconds=15),
    start: datetime = T0,
    state: GroupState | None = None,
) -> Evaluation:
    """Feed the same reads every `step` for `duration` without acting; return the last evaluation.

    This fills every rule's window, so the returned decision is what the rules say about
    a steady signal.
    """
    state = state or GroupState()
    now = start
    evaluation = decide(spec, state, observations, now=now, current=current)
    while now < start + duration:
        now += step
        evaluation = decide(spec, evaluation.state, observations, now=now, current=current)
    return evaluation


def simulate(
    spec: GroupSpec,
    feed: Callable[[datetime, int], dict[str, Observation]],
    *,
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(seconds=15),
    current: int = 0,
) -> list[Decision]:
    """Run the engine from `start` to `end`, the group following every decision at once."""
    state = GroupState()
    decisions: list[Decision] = []
    now = start
    while now <= end:
        evaluation = decide(spec, state, feed(now, current), now=now, current=current)
        decision = evaluation.decision
        decisions.append(decision)
        state = evaluation.state
        if decision.target != current:
            state = state.after_scale(at=now, was=current, now_is=decision.target)
            current = decision.target
        now += step
    return decisions
