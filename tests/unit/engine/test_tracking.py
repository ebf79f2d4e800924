"""Target rules (the HPA's AverageValue and Value), alone, together and beside threshold rules."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from autozero.engine.decide import decide
from autozero.engine.decision import Action, Reason, RuleStatus
from autozero.engine.readings import Observation, Reading
from autozero.engine.spec import Behavior, GroupSpec, Rule, TargetRule
from autozero.engine.state import GroupState
from support.engine import HPA_DEFAULT, T0, group, minutes, rates, rule, steady, target


@dataclass(frozen=True)
class Row:
    rules: list[Rule | TargetRule]
    reads: dict[str, Observation]
    current: int
    expected: int
    reason: Reason
    maximum: int = 30


def q(value: float) -> Reading:
    return Reading(value, pending=value, in_flight=0)


PER_50 = target("q", average_value=50)
CPU_80 = target("cpu", value=0.8)

ROWS = [
    # averageValue: desired = ceil(value / 50), the value a total for the group.
    pytest.param(Row([PER_50], {"q": q(1000)}, 4, 20, Reason.RULE_FIRED), id="avg-out"),
    pytest.param(Row([PER_50], {"q": q(120)}, 4, 3, Reason.ALL_DECREASE_RULES_FIRED), id="avg-in"),
    pytest.param(Row([PER_50], {"q": q(1000)}, 4, 12, Reason.RULE_FIRED, 12), id="avg-capped"),
    pytest.param(
        # Wanting 0 is wanting the floor: only activation takes an awake group to 0.
        Row([PER_50], {"q": q(0)}, 4, 1, Reason.ALL_DECREASE_RULES_FIRED),
        id="avg-zero-floors-at-one",
    ),
    # tolerance: 210 / (4 x 50) = 1.05 is within 0.1; 230 / 200 = 1.15 is not.
    pytest.param(Row([PER_50], {"q": q(210)}, 4, 4, Reason.NO_RULE_FIRED), id="within-tolerance"),
    pytest.param(Row([PER_50], {"q": q(230)}, 4, 5, Reason.RULE_FIRED), id="outside-tolerance"),
    pytest.param(
        Row([target("q", average_value=50, tolerance=0)], {"q": q(210)}, 4, 5, Reason.RULE_FIRED),
        id="tolerance-zero",
    ),
    pytest.param(
        Row(
            [target("q", average_value=50, tolerance=0.3)],
            {"q": q(150)},
            4,
            4,
            Reason.NO_RULE_FIRED,
        ),
        id="tolerance-wide",
    ),
    # value: desired = ceil(current x value / 0.8).
    pytest.param(
        # 5 x 0.96 / 0.8 is 6.000000000000001 in floats: 6, not 7.
        Row([CPU_80], {"cpu": Reading(0.96)}, 5, 6, Reason.RULE_FIRED),
        id="value-out-float-forgiven",
    ),
    pytest.param(
        Row([CPU_80], {"cpu": Reading(0.4)}, 5, 3, Reason.ALL_DECREASE_RULES_FIRED), id="value-in"
    ),
    pytest.param(
        Row([CPU_80], {"cpu": Reading(0.85)}, 5, 5, Reason.NO_RULE_FIRED), id="value-hold"
    ),
    # Several target rules: the largest wins out; in only when all want fewer, to the largest.
    pytest.param(
        Row([PER_50, CPU_80], {"q": q(1000), "cpu": Reading(0.4)}, 5, 20, Reason.RULE_FIRED),
        id="two-targets-largest-out",
    ),
    pytest.param(
        Row(
            [PER_50, CPU_80],
            {"q": q(100), "cpu": Reading(0.4)},
            5,
            3,
            Reason.ALL_DECREASE_RULES_FIRED,
        ),
        id="two-targets-both-fewer",
    ),
    pytest.param(
        Row(
            [PER_50, CPU_80],
            {"q": q(100), "cpu": Reading(0.8)},
            5,
            5,
            Reason.NOT_ALL_DECREASE_RULES_FIRED,
        ),
        id="two-targets-one-holds",
    ),
    # Beside threshold rules.
    pytest.param(
        Row(
            [PER_50, rule("q", "LessThan", 200, "Decrease", cooldown=minutes(0))],
            {"q": q(100)},
            5,
            4,
            Reason.ALL_DECREASE_RULES_FIRED,
        ),
        id="target-and-decrease-smallest-step",
    ),
    pytest.param(
        Row(
            [PER_50, rule("q", "LessThan", 50, "Decrease", cooldown=minutes(0))],
            {"q": q(100)},
            5,
            5,
            Reason.NOT_ALL_DECREASE_RULES_FIRED,
        ),
        id="target-fewer-decrease-not-met",
    ),
    pytest.param(
        Row(
            [PER_50, rule("q", "GreaterThan", 50, change=2, cooldown=minutes(0))],
            {"q": q(100)},
            5,
            7,
            Reason.RULE_FIRED,
        ),
        id="increase-beats-target-fewer",
    ),
    pytest.param(
        Row(
            [PER_50, rule("q", "GreaterThan", 50, change=1, cooldown=minutes(0))],
            {"q": q(1000)},
            5,
            20,
            Reason.RULE_FIRED,
        ),
        id="target-beats-smaller-increase",
    ),
    pytest.param(
        Row(
            [PER_50, rule("q", "GreaterThan", 5000, cooldown=minutes(0))],
            {"q": q(100)},
            5,
            2,
            Reason.ALL_DECREASE_RULES_FIRED,
        ),
        id="an-idle-increase-rule-does-not-block-in",
    ),
    pytest.param(
        Row([PER_50], {"q": q(float("nan"))}, 5, 5, Reason.NO_RULE_FIRED), id="nan-changes-nothing"
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_target_rules(row: Row) -> None:
    spec = group(row.rules, activation=None, minimum=1, maximum=row.maximum)
    # Long enough for a threshold rule's 5-minute window to fill, and for the 5-minute scale-down
    # stabilization (a profile with a target rule has one by default) to forget its insufficient
    # data.
    decision = steady(spec, row.reads, current=row.current, duration=minutes(11)).decision
    assert (decision.target, decision.reason) == (row.expected, row.reason), decision.message


def test_a_target_verdict_says_what_it_wants() -> None:
    spec = group([PER_50], activation=None, maximum=30)
    decision = steady(spec, {"q": q(1000)}, current=4).decision
    (verdict,) = decision.rules
    assert (verdict.status, verdict.observed, verdict.proposed) == (RuleStatus.FIRED, 1000, 20)
    assert (verdict.direction, verdict.operator, verdict.threshold) == (None, None, 50)
    assert decision.message == "q 1000 at averageValue 50 wants 20"
    assert decision.recommended == 20
    hold = steady(group([PER_50], activation=None), {"q": q(210)}, current=4).decision
    assert hold.message == "q 210 at averageValue 50 keeps 4 (tolerance 0.1)"


def test_insufficient_data_wants_nothing() -> None:
    rule_ = target("q", average_value=50, grain=minutes(1), window=minutes(5))
    decision = decide(
        group([rule_], activation=None), GroupState(), {"q": q(1000)}, now=T0, current=4
    )
    assert decision.decision.target == 4
    assert decision.decision.reason is Reason.INSUFFICIENT_DATA


# --- waking: the newcomer's "one replica per 50 messages", 0..20 -----------------------------


def newcomer(behavior: Behavior | None = None, *, handoff: bool = False) -> GroupSpec:
    return group(
        [PER_50], activation="q", maximum=20, default=1, behavior=behavior, handoff=handoff
    )


@pytest.mark.parametrize(
    ("backlog", "behavior", "handoff", "expected"),
    [
        pytest.param(1000, None, False, 20, id="1000-wakes-20-at-once"),
        pytest.param(30, None, False, 1, id="30-wakes-the-default"),
        pytest.param(5000, None, False, 20, id="capped-at-the-maximum"),
        pytest.param(1000, HPA_DEFAULT, False, 1, id="rate-limited-up-wakes-the-default"),
        pytest.param(
            1000, Behavior(scale_up=rates(window=60)), False, 20, id="stabilized-only-still-20"
        ),
        pytest.param(1000, None, True, 1, id="handoff-wakes-the-default"),
    ],
)
def test_wake_to_what_the_target_rules_want(
    backlog: float, behavior: Behavior | None, handoff: bool, expected: int
) -> None:
    spec = newcomer(behavior, handoff=handoff)
    decision = decide(spec, GroupState(), {"q": q(backlog)}, now=T0, current=0).decision
    assert (decision.action, decision.target, decision.reason) == (
        Action.WAKE,
        expected,
        Reason.WORK_PENDING,
    )


def test_a_value_target_at_zero_wants_the_ratio() -> None:
    # The HPA's rule at 0 replicas: ceil(value / target).
    spec = group([target("q", value=100)], activation="q", maximum=20, default=1)
    decision = decide(spec, GroupState(), {"q": q(450)}, now=T0, current=0).decision
    assert decision.target == 5
