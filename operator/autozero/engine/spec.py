"""What the engine needs to know about a group: capacity, profiles, rules, activation, fallback.

These are the engine's own immutable value types. `autozero.policy` builds them from a manifest;
the engine never sees YAML, Kubernetes objects or clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property


class Statistic(StrEnum):
    """How samples within one time grain are reduced across instances."""

    AVERAGE = "Average"
    MIN = "Min"
    MAX = "Max"
    SUM = "Sum"
    LAST = "Last"
    COUNT = "Count"


class TimeAggregation(StrEnum):
    """How the grains of one time window are reduced to the value a rule compares."""

    AVERAGE = "Average"
    MINIMUM = "Minimum"
    MAXIMUM = "Maximum"
    TOTAL = "Total"
    LAST = "Last"
    COUNT = "Count"


class Operator(StrEnum):
    EQUALS = "Equals"
    NOT_EQUALS = "NotEquals"
    GREATER_THAN = "GreaterThan"
    GREATER_THAN_OR_EQUAL = "GreaterThanOrEqual"
    LESS_THAN = "LessThan"
    LESS_THAN_OR_EQUAL = "LessThanOrEqual"

    def holds(self, value: float, threshold: float) -> bool:
        match self:
            case Operator.EQUALS:
                return value == threshold
            case Operator.NOT_EQUALS:
                return value != threshold
            case Operator.GREATER_THAN:
                return value > threshold
            case Operator.GREATER_THAN_OR_EQUAL:
                return value >= threshold
            case Operator.LESS_THAN:
                return value < threshold
            case Operator.LESS_THAN_OR_EQUAL:
                return value <= threshold

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Operator.EQUALS: "=",
    Operator.NOT_EQUALS: "≠",
    Operator.GREATER_THAN: ">",
    Operator.GREATER_THAN_OR_EQUAL: "≥",
    Operator.LESS_THAN: "<",
    Operator.LESS_THAN_OR_EQUAL: "≤",
}


class Direction(StrEnum):
    INCREASE = "Increase"
    DECREASE = "Decrease"


class ActionType(StrEnum):
    CHANGE_COUNT = "ChangeCount"
    PERCENT_CHANGE_COUNT = "PercentChangeCount"
    EXACT_COUNT = "ExactCount"


@dataclass(frozen=True, slots=True)
class Capacity:
    minimum: int
    maximum: int
    default: int

    def clamp(self, count: int) -> int:
        return max(self.minimum, min(self.maximum, count))


@dataclass(frozen=True, slots=True)
class ScaleAction:
    direction: Direction
    type: ActionType
    value: float
    cooldown: timedelta


@dataclass(frozen=True, slots=True)
class Rule:
    metric: str
    time_grain: timedelta
    statistic: Statistic
    time_window: timedelta
    time_aggregation: TimeAggregation
    operator: Operator
    threshold: float
    action: ScaleAction
    per_instance: bool = False

    @property
    def grains(self) -> int:
        """How many grains make one full window."""
        return max(1, round(self.time_window / self.time_grain))


class TargetKind(StrEnum):
    """The HPA's two forms of a target, as written in a policy."""

    AVERAGE_VALUE = "averageValue"  # the value is a total: one replica per `value` of it
    VALUE = "value"  # the value is a ratio at the current count (a CPU utilisation, say)


@dataclass(frozen=True, slots=True)
class TrackingTarget:
    kind: TargetKind
    value: float  # > 0
    tolerance: float = 0.1  # |1 - ratio| within this keeps the count (the HPA's default)


@dataclass(frozen=True, slots=True)
class TargetRule:
    """A target-tracking rule (the HPA's semantics): its metric, aggregated as a threshold rule's
    is, gives a desired count; see `autozero.engine.tracking`."""

    metric: str
    time_grain: timedelta
    statistic: Statistic
    time_window: timedelta
    time_aggregation: TimeAggregation
    target: TrackingTarget

    @property
    def grains(self) -> int:
        return max(1, round(self.time_window / self.time_grain))


AnyRule = Rule | TargetRule


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Weekly start times (`days` x `hours` x `minutes`) in an IANA time zone.

    As in Azure, a recurrence runs from its start until the next profile's start. `duration`, when
    set, ends it earlier, so "office hours 08:00 for 10h" needs no second profile to stop at 18:00.
    """

    time_zone: str
    days: frozenset[int]  # 0 = Monday ... 6 = Sunday, as datetime.weekday()
    hours: tuple[int, ...]
    minutes: tuple[int, ...] = (0,)
    duration: timedelta | None = None


@dataclass(frozen=True, slots=True)
class FixedDate:
    """A one-off window [start, end); both aware datetimes."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    rules: tuple[AnyRule, ...] = ()
    capacity: Capacity | None = None  # None: the group's own capacity
    recurrence: Recurrence | None = None
    fixed_date: FixedDate | None = None

    @property
    def scheduled(self) -> bool:
        return self.recurrence is not None or self.fixed_date is not None


@dataclass(frozen=True, slots=True)
class Activation:
    """Wake on pending > `threshold` of `metric`; sleep once pending has stayed at or below it,
    with nothing in flight, for `idle_for` (KEDA's activationValue, 0 by default).

    `unit` says what one pending unit is ("jobs", "messages"), so sentences never call a CPU
    ratio "jobs"; empty for a plain value such as a Prometheus query's.
    """

    metric: str
    idle_for: timedelta
    threshold: float = 0.0
    unit: str = ""


class PolicyType(StrEnum):
    PODS = "Pods"  # at most `value` replicas more (or fewer) per period
    PERCENT = "Percent"  # at most `value` percent of the count at the period's start


class SelectPolicy(StrEnum):
    MAX = "Max"  # the policy that allows the largest change
    MIN = "Min"  # the policy that allows the smallest change
    DISABLED = "Disabled"  # no change in this direction at all


@dataclass(frozen=True, slots=True)
class RatePolicy:
    type: PolicyType
    value: int
    period: timedelta


@dataclass(frozen=True, slots=True)
class ScalingRules:
    """One direction of the HPA's `behavior`: a stabilization window and rate policies."""

    stabilization_window: timedelta = timedelta(0)
    select_policy: SelectPolicy = SelectPolicy.MAX
    policies: tuple[RatePolicy, ...] = ()  # none: no rate limit

    @property
    def limited(self) -> bool:
        return self.select_policy is SelectPolicy.DISABLED or bool(self.policies)


#: The scale-down stabilization of a profile with a target rule, when `behavior.scaleDown` is
#: not set: the HPA's default (`--horizontal-pod-autoscaler-downscale-stabilization`).
DEFAULT_SCALE_DOWN_STABILIZATION = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Behavior:
    """The HPA's `behavior`, applied to the count the rules recommend (never to a wake, a
    sleep, a profile's bounds or a fallback). None in a direction: autozero's default there,
    which is not the HPA's: scale-up is not limited, and scale-down is stabilized over
    `DEFAULT_SCALE_DOWN_STABILIZATION` in a profile with a target rule (threshold rules have
    their own window and cooldown, as in Azure)."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """After `threshold` consecutive failed reads a source makes the group Degraded; with
    `fallback_replicas` set, a Degraded group is raised (never lowered) to that count."""

    threshold: int = 3
    fallback_replicas: int | None = None


@dataclass(frozen=True)
class GroupSpec:
    name: str
    capacity: Capacity
    profiles: tuple[Profile, ...] = ()
    activation: Activation | None = None
    failure: FailurePolicy = field(default_factory=FailurePolicy)
    handoff: bool = False  # a native autoscaler owns the count while awake
    behavior: Behavior = field(default_factory=Behavior)

    @cached_property
    def default_profile(self) -> Profile:
        for profile in self.profiles:
            if not profile.scheduled:
                return profile
        return Profile(name="default")

    @cached_property
    def scheduled_profiles(self) -> tuple[Profile, ...]:
        return tuple(p for p in self.profiles if p.scheduled)

    @cached_property
    def recurring_profiles(self) -> tuple[Profile, ...]:
        return tuple(p for p in self.scheduled_profiles if p.recurrence is not None)

    @cached_property
    def recurrences(self) -> tuple[Recurrence, ...]:
        """The recurring profiles' recurrences, in the same order."""
        return tuple(p.recurrence for p in self.recurring_profiles if p.recurrence is not None)

    @cached_property
    def metrics(self) -> tuple[str, ...]:
        """Every metric this group reads, activation first, in a stable order."""
        names: dict[str, None] = {}
        if self.activation is not None:
            names[self.activation.metric] = None
        for profile in self.profiles:
            for rule in profile.rules:
                names[rule.metric] = None
        return tuple(names)

    @cached_property
    def history_seconds(self) -> dict[str, float]:
        """How far back samples of each metric must be kept: its longest window plus one grain."""
        keep: dict[str, float] = dict.fromkeys(self.metrics, 0.0)
        for profile in self.profiles:
            for rule in profile.rules:
                span = (rule.time_window + rule.time_grain).total_seconds()
                keep[rule.metric] = max(keep[rule.metric], span)
        return keep

    @cached_property
    def _tracking_profiles(self) -> frozenset[str]:
        return frozenset(
            p.name for p in self.profiles if any(isinstance(r, TargetRule) for r in p.rules)
        )

    @cached_property
    def _stabilization(self) -> dict[str, tuple[float, float]]:
        return {p.name: self._stabilization_of(p) for p in (*self.profiles, self.default_profile)}

    def stabilization_of(self, profile: Profile) -> tuple[float, float]:
        """The (scale-up, scale-down) stabilization windows in seconds while `profile` is
        active."""
        known = self._stabilization.get(profile.name)
        return known if known is not None else self._stabilization_of(profile)

    def _stabilization_of(self, profile: Profile) -> tuple[float, float]:
        behavior = self.behavior
        up = behavior.scale_up.stabilization_window.total_seconds() if behavior.scale_up else 0.0
        if behavior.scale_down is not None:
            down = behavior.scale_down.stabilization_window.total_seconds()
        elif profile.name in self._tracking_profiles:
            down = DEFAULT_SCALE_DOWN_STABILIZATION.total_seconds()
        else:
            down = 0.0
        return up, down

    @cached_property
    def recommendation_seconds(self) -> tuple[float, float]:
        """How long recommendations must be kept for the (scale-up, scale-down) stabilization:
        the longest window of any profile."""
        windows = self._stabilization.values()
        return max(w[0] for w in windows), max(w[1] for w in windows)

    @cached_property
    def rate_seconds(self) -> float:
        """How long scale events must be kept: the longest rate policy's period."""
        periods = [
            policy.period.total_seconds()
            for rules in (self.behavior.scale_up, self.behavior.scale_down)
            if rules is not None
            for policy in rules.policies
        ]
        return max(periods, default=0.0)

    def capacity_of(self, profile: Profile) -> Capacity:
        """The profile's bounds within the group's: the group's capacity is a cap no profile
        lifts (the schema refuses a profile outside it; this holds for any GroupSpec)."""
        own = profile.capacity
        if own is None:
            return self.capacity
        group = self.capacity
        if group.minimum <= own.minimum and own.maximum <= group.maximum:
            return own
        return Capacity(
            group.clamp(own.minimum), group.clamp(own.maximum), group.clamp(own.default)
        )
