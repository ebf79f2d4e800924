"""The engine's answer: a target count, the action it means, and every reason behind it.

Every outcome, and above all every Hold, carries a `Reason` code and one sentence that can go
straight into a status condition or an Event, the way the HPA says why it keeps its count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from autozero.engine.spec import Direction, Operator, TrackingTarget


class Action(StrEnum):
    WAKE = "Wake"  # 0 -> awake
    SCALE_OUT = "ScaleOut"
    SCALE_IN = "ScaleIn"
    SLEEP = "Sleep"  # awake -> 0
    HOLD = "Hold"

    @staticmethod
    def between(current: int, target: int) -> Action:
        if target == current:
            return Action.HOLD
        if current == 0:
            return Action.WAKE
        if target == 0:
            return Action.SLEEP
        return Action.SCALE_OUT if target > current else Action.SCALE_IN


class Reason(StrEnum):
    WORK_PENDING = "WorkPending"  # wake: jobs wait
    IDLE = "Idle"  # sleep: nothing pending nor in flight for idleFor
    RULE_FIRED = "RuleFired"  # scale out: an Increase rule fired
    ALL_DECREASE_RULES_FIRED = "AllDecreaseRulesFired"  # scale in
    SCHEDULE_MINIMUM = "ScheduleMinimum"  # raised to the active profile's minimum
    SCHEDULE_MAXIMUM = "ScheduleMaximum"  # lowered to the active profile's maximum
    FALLBACK = "Fallback"  # raised to fallback replicas while Degraded
    ASLEEP = "Asleep"  # hold at 0: nothing pending
    NO_RULE_FIRED = "NoRuleFired"
    NO_RULES = "NoRules"
    NOT_ALL_DECREASE_RULES_FIRED = "NotAllDecreaseRulesFired"
    IN_COOLDOWN = "InCooldown"
    INSUFFICIENT_DATA = "InsufficientData"
    SOURCE_FAILED = "SourceFailed"  # a failing source blocks every step down
    WOULD_FLAP = "WouldFlap"
    IN_FLIGHT = "InFlight"  # the count may not go below 1 while jobs run
    AT_BOUND = "AtBound"  # a rule fired but the count is already at the bound
    HANDOFF = "Handoff"  # a native autoscaler owns the count while awake
    STABILIZED = "Stabilized"  # held by a recent recommendation (behavior's stabilization)
    RATE_LIMITED = "RateLimited"  # held by behavior's rate policies
    UNFINISHED = "Unfinished"  # a scale-out a restart interrupted between its writes, finished


class RuleStatus(StrEnum):
    FIRED = "Fired"
    NOT_MET = "NotMet"
    INSUFFICIENT_DATA = "InsufficientData"
    SOURCE_FAILED = "SourceFailed"
    IN_COOLDOWN = "InCooldown"


def _fmt(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """One rule's verdict. A threshold rule has a direction and an operator; a target rule has
    neither (it may move the count either way) but a `target`, whose value is `threshold`, and
    it always says the count it wants (`proposed`) once it has data; it "fires" when that count
    differs from the current one."""

    index: int  # position in the active profile's rules
    metric: str
    direction: Direction | None  # None: a target rule
    operator: Operator | None  # None: a target rule
    threshold: float  # a threshold rule's threshold, a target rule's target value
    observed: float | None  # the aggregated value compared (after perInstance division)
    status: RuleStatus
    proposed: int | None = None  # the count this rule asks for when it fires
    grains: tuple[int, int] = (0, 0)  # (grains with data, grains needed)
    cooldown_until: datetime | None = None
    target: TrackingTarget | None = None

    @property
    def fired(self) -> bool:
        return self.status is RuleStatus.FIRED

    @property
    def comparison(self) -> str:
        observed = "?" if self.observed is None else _fmt(self.observed)
        if self.target is not None:
            return f"{self.metric} {observed} at {self.target.kind.value} {_fmt(self.threshold)}"
        symbol = self.operator.symbol if self.operator is not None else "?"
        return f"{self.metric} {observed} {symbol} {_fmt(self.threshold)}"

    @property
    def detail(self) -> str:
        """One sentence on this verdict, built only when someone reads it (not on the hot path)."""
        if self.target is not None and self.status in (RuleStatus.FIRED, RuleStatus.NOT_MET):
            if self.proposed is None:
                return f"{self.comparison}: not a number, no count"
            if self.fired:
                return f"{self.comparison} wants {self.proposed}"
            return (
                f"{self.comparison} keeps {self.proposed} (tolerance {_fmt(self.target.tolerance)})"
            )
        match self.status:
            case RuleStatus.FIRED:
                return f"fired: {self.comparison}"
            case RuleStatus.NOT_MET:
                return f"not met: {self.comparison} is false"
            case RuleStatus.INSUFFICIENT_DATA:
                return (
                    f"insufficient data for {self.metric}: {self.grains[0]}/{self.grains[1]} grains"
                )
            case RuleStatus.SOURCE_FAILED:
                return f"source for {self.metric} failed"
            case RuleStatus.IN_COOLDOWN:
                until = (
                    self.cooldown_until.strftime("%Y-%m-%dT%H:%M:%SZ")
                    if self.cooldown_until
                    else "?"
                )
                return f"{self.comparison}, but in cooldown until {until}"


@dataclass(frozen=True, slots=True)
class Decision:
    group: str
    at: datetime
    profile: str
    current: int
    target: int
    action: Action
    reason: Reason
    message: str
    rules: tuple[RuleVerdict, ...] = ()
    pending: float | None = None
    in_flight: float | None = None
    failing: tuple[str, ...] = ()  # metrics whose read failed this cycle
    degraded: tuple[str, ...] = ()  # metrics failing for `failure.threshold` cycles or more
    idle_since: datetime | None = None
    #: The earliest instant after `at` (in UTC) when, with no new input, this decision may
    #: differ; None: never without new input. Ask again then (see `autozero.engine.decide`).
    deadline: datetime | None = None
    #: Whether a read matters even when its values are unchanged: the decision read its rules'
    #: sample windows (a Count grows, a window fills) or a failing source is counting towards
    #: its failure threshold. False: `record` such reads; only a change or the deadline matters.
    every_read_matters: bool = False
    #: The count the rules recommended (within the profile's bounds), before behavior
    #: (stabilization, rate policies) and safety; None when no rule was asked (asleep, a
    #: handoff, a sleep).
    recommended: int | None = None
