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


def target(
    metric: str,
    *,
    average_value: float | None = None,
    value: float | None = None,
    tolerance: float = 0.1,
    grain: timedelta = timedelta(seconds=15),
    window: timedelta = timedelta(seconds=15),
    statistic: str = "Last",
    aggregation: str = "Last",
) -> TargetRule:
    """A target rule; by default it reads the newest sample (one 15 s grain), as the HPA does."""
    kind, amount = (
        (TargetKind.AVERAGE_VALUE, average_value)
        if average_value is not None
        else (TargetKind.VALUE, value)
    )
    assert amount is not None, "give average_value or value"
    return TargetRule(
        metric=metric,
        time_grain=grain,
        statistic=Statistic(statistic),
        time_window=window,
        time_aggregation=TimeAggregation(aggregation),
        target=TrackingTarget(kind, amount, tolerance),
    )


def rates(
    *policies: tuple[str, int, float],
    window: float = 0,
    select: str = "Max",
) -> ScalingRules:
    """Scaling rules: `("Pods", 4, 15)` is 4 pods per 15 s; `window` in seconds."""
    return ScalingRules(
        timedelta(seconds=window),
        SelectPolicy(select),
        tuple(
            RatePolicy(PolicyType(kind), amount, timedelta(seconds=period))
            for kind, amount, period in policies
        ),
    )


#: The HPA's default behavior (what a KEDA ScaledObject without one gets).
HPA_DEFAULT = Behavior(
    scale_up=rates(("Percent", 100, 15), ("Pods", 4, 15)),
    scale_down=rates(("Percent", 100, 15), window=300),
)


def group(
    rules: Iterable[Rule | TargetRule] = (),
    *,
    minimum: int = 0,
    maximum: int = 10,
    default: int = 1,
    activation: str | None = "backlog",
    idle_for: timedelta = timedelta(minutes=30),
    profiles: Iterable[Profile] = (),
    failure: FailurePolicy | None = None,
    handoff: bool = False,
    behavior: Behavior | None = None,
) -> GroupSpec:
    all_profiles = (*profiles, Profile(name="default", rules=tuple(rules)))
    return GroupSpec(
        name="workers",
        capacity=Capacity(minimum, maximum, default),
        profiles=all_profiles,
        activation=None if activation is None else Activation(activation, idle_for),
        failure=failure or FailurePolicy(),
        handoff=handoff,
        behavior=behavior or Behavior(),
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
