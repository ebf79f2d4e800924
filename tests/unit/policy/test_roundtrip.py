"""Generated policies: model -> manifest -> model is the identity; mutations never crash."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from autozero.engine.spec import (
    ActionType,
    Activation,
    Behavior,
    Capacity,
    Direction,
    FailurePolicy,
    FixedDate,
    GroupSpec,
    Operator,
    PolicyType,
    Profile,
    RatePolicy,
    Recurrence,
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
from autozero.policy.errors import PolicyInvalid
from autozero.policy.model import GroupPolicy, MetricSpec, Policy
from autozero.policy.parse import parse_policy
from autozero.policy.render import render_policy
from autozero.policy.validate import apply_defaults
from autozero.sources.registry import SOURCES
from autozero.targets.registry import TARGETS
from hypothesis import given, settings
from hypothesis import strategies as st

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)


def defaulted(example: Any, schema: dict[str, Any]) -> Any:
    """A kind's example settings as the schema's defaults complete them (as parse sees them)."""
    return apply_defaults(copy.deepcopy(dict(example)), schema)


#: Every registered source's example (key, settings): a new source is covered with no edit here.
SOURCE_EXAMPLES = [(key, defaulted(s.example, s.schema())) for key, s in SOURCES.items()]
POLLING = timedelta(seconds=15)
minutes = st.integers(1, 10).map(lambda n: timedelta(minutes=n))


@st.composite
def rules(draw: st.DrawFn, metrics: list[str]) -> Rule | TargetRule:
    grain = draw(st.sampled_from([timedelta(seconds=30), timedelta(minutes=1)]))
    if draw(st.booleans()):
        return TargetRule(
            metric=draw(st.sampled_from(metrics)),
            time_grain=grain,
            statistic=draw(st.sampled_from(list(Statistic))),
            time_window=grain * draw(st.integers(1, 10)),
            time_aggregation=draw(st.sampled_from(list(TimeAggregation))),
            target=TrackingTarget(
                draw(st.sampled_from(list(TargetKind))),
                draw(st.floats(0.001, 1e6, allow_nan=False)),
                draw(st.floats(0, 1, allow_nan=False)),
            ),
        )
    kind = draw(st.sampled_from(list(ActionType)))
    return Rule(
        metric=draw(st.sampled_from(metrics)),
        time_grain=grain,
        statistic=draw(st.sampled_from(list(Statistic))),
        time_window=grain * draw(st.integers(1, 10)),
        time_aggregation=draw(st.sampled_from(list(TimeAggregation))),
        operator=draw(st.sampled_from(list(Operator))),
        threshold=draw(st.floats(-1e6, 1e6, allow_nan=False)),
        per_instance=draw(st.booleans()),
        action=ScaleAction(
            draw(st.sampled_from(list(Direction))),
            kind,
            draw(st.integers(0 if kind is ActionType.EXACT_COUNT else 1, 100)),
            draw(minutes),
        ),
    )


@st.composite
def scaling_rules(draw: st.DrawFn) -> ScalingRules:
    period = st.integers(1, 1800).map(lambda n: timedelta(seconds=n))
    policy = st.builds(RatePolicy, st.sampled_from(list(PolicyType)), st.integers(1, 500), period)
    return ScalingRules(
        timedelta(seconds=draw(st.integers(0, 3600))),
        draw(st.sampled_from(list(SelectPolicy))),
        tuple(draw(st.lists(policy, max_size=3))),
    )


def behaviors() -> st.SearchStrategy[Behavior]:
    return st.builds(Behavior, st.none() | scaling_rules(), st.none() | scaling_rules())


@st.composite
def capacities(draw: st.DrawFn, minimum_floor: int = 0, ceiling: int = 50) -> Capacity:
    """Bounds with a minimum of at least `minimum_floor` and a maximum of at most `ceiling`."""
    maximum = draw(st.integers(max(1, minimum_floor), ceiling))
    minimum = draw(st.integers(minimum_floor, maximum))
    return Capacity(minimum, maximum, draw(st.integers(minimum, maximum)))


@st.composite
def profiles(draw: st.DrawFn, metrics: list[str], bounds: Capacity) -> tuple[Profile, ...]:
    """Profiles whose capacities lie within the group's `bounds`, as the schema requires."""
    names = draw(st.lists(NAMES, unique=True, max_size=3))
    out = []
    for index, name in enumerate(names):
        # At most one profile without a schedule: the first.
        schedule = draw(st.sampled_from(["recurrence", "fixed"])) if index else "none"
        recurrence = fixed = None
        if schedule == "recurrence":
            recurrence = Recurrence(
                draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"])),
                frozenset(draw(st.lists(st.integers(0, 6), min_size=1, unique=True))),
                tuple(sorted(draw(st.lists(st.integers(0, 23), min_size=1, unique=True)))),
                tuple(sorted(draw(st.lists(st.integers(0, 59), min_size=1, unique=True)))),
                draw(st.none() | minutes),
            )
        elif schedule == "fixed":
            start = datetime(2026, 12, 1, tzinfo=UTC) + draw(minutes)
            fixed = FixedDate(start, start + draw(minutes))
        out.append(
            Profile(
                name,
                tuple(draw(st.lists(rules(metrics), max_size=3))) if metrics else (),
                draw(st.none() | capacities(bounds.minimum, bounds.maximum)),
                recurrence,
                fixed,
            )
        )
    return tuple(out)


@st.composite
def groups(draw: st.DrawFn, name: str, metrics: list[str], units: dict[str, str]) -> GroupPolicy:
    kind = draw(st.sampled_from(list(TARGETS.values())))  # every registered target kind
    target = kind.parse(defaulted(draw(st.sampled_from(kind.examples)), kind.schema()))
    capacity = draw(capacities(minimum_floor=0 if metrics else 1))
    activation = (
        Activation(
            metric := draw(st.sampled_from(metrics)),
            draw(minutes),
            draw(st.sampled_from([0.0, 0.5, 5.0])),
            units[metric],
        )
        if metrics and (capacity.minimum == 0 or draw(st.booleans()))
        else None
    )
    native = kind.handoff
    handoff = (
        draw(
            st.none()
            | st.sampled_from(native.examples).map(
                lambda e: native.parse(defaulted(e, native.schema()))
            )
        )
        if native is not None
        else None
    )
    fallback = draw(st.none() | st.integers(0, capacity.maximum))
    behavior = draw(behaviors()) if handoff is None else Behavior()
    return GroupPolicy(
        name,
        target,
        GroupSpec(
            name,
            capacity,
            draw(profiles(metrics, capacity)),
            activation,
            FailurePolicy(draw(st.integers(1, 5)), fallback),
            handoff is not None,
            behavior,
        ),
        handoff,
        draw(st.booleans()),
    )


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    metric_names = draw(st.lists(NAMES, unique=True, max_size=3))
    metrics = tuple(MetricSpec(n, *draw(st.sampled_from(SOURCE_EXAMPLES))) for n in metric_names)
    units = {m.name: SOURCES[m.source].unit for m in metrics}
    group_names = draw(st.lists(NAMES, unique=True, min_size=1, max_size=3))
    return Policy(
        name=draw(NAMES),
        namespace=draw(NAMES),
        polling_interval=POLLING,
        metrics=metrics,
        groups=tuple(draw(groups(n, metric_names, units)) for n in group_names),
        paused=draw(st.booleans()),
        dry_run=draw(st.booleans()),
        service_account=draw(st.none() | NAMES),
    )


@settings(max_examples=60, deadline=None)
@given(policy=policies())
def test_model_manifest_model_is_the_identity(policy: Policy) -> None:
    manifest = yaml.safe_load(yaml.safe_dump(render_policy(policy)))
    assert parse_policy(manifest) == policy


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
    st.just("5m"),
    st.just({"name": "x"}),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


@settings(max_examples=100, deadline=None)
@given(policy=policies(), data=st.data())
def test_mutations_are_accepted_or_rejected_with_a_path(
    policy: Policy, data: st.DataObject
) -> None:
    manifest = copy.deepcopy(render_policy(policy))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(manifest)))
        parent: Any = manifest
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JUNK)
    errors: tuple[Any, ...] = ()
    try:
        parse_policy(manifest)
    except PolicyInvalid as invalid:  # any other exception fails the test
        errors = invalid.errors
        if not errors:
            raise AssertionError("PolicyInvalid without errors") from invalid
    assert all(error.path and error.message for error in errors)
