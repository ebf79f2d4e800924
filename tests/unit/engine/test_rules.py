"""Rules one by one: operators, actions, perInstance, cooldown, and how verdicts combine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from autozero.engine.decision import Action, Reason, RuleStatus
from autozero.engine.readings import Failure, Reading
from autozero.engine.rules import proposed_count
from autozero.engine.spec import ActionType, Direction, ScaleAction
from support.engine import T0, group, minutes, rule, steady


@pytest.mark.parametrize(
    ("operator", "value", "fires"),
    [
        pytest.param("Equals", 10, True, id="equals-hit"),
        pytest.param("Equals", 11, False, id="equals-miss"),
        pytest.param("NotEquals", 11, True, id="not-equals-hit"),
        pytest.param("NotEquals", 10, False, id="not-equals-miss"),
        pytest.param("GreaterThan", 11, True, id="greater-hit"),
        pytest.param("GreaterThan", 10, False, id="greater-at-threshold"),
        pytest.param("GreaterThanOrEqual", 10, True, id="greater-or-equal-at-threshold"),
        pytest.param("GreaterThanOrEqual", 9, False, id="greater-or-equal-miss"),
        pytest.param("LessThan", 9, True, id="less-hit"),
        pytest.param("LessThan", 10, False, id="less-at-threshold"),
        pytest.param("LessThanOrEqual", 10, True, id="less-or-equal-at-threshold"),
        pytest.param("LessThanOrEqual", 11, False, id="less-or-equal-miss"),
    ],
)
def test_operators(operator: str, value: float, fires: bool) -> None:
    spec = group([rule("load", operator, 10)], activation=None, minimum=1)
    evaluation = steady(spec, {"load": Reading(value)}, current=2)
    verdict = evaluation.decision.rules[0]
    assert verdict.fired is fires
    assert verdict.observed == value
    assert evaluation.decision.target == (3 if fires else 2)


@pytest.mark.parametrize(
    ("type_", "direction", "value", "current", "expected"),
    [
        pytest.param("ChangeCount", "Increase", 2, 3, 5, id="change-up"),
        pytest.param("ChangeCount", "Decrease", 2, 3, 1, id="change-down"),
        pytest.param("PercentChangeCount", "Increase", 50, 4, 6, id="percent-up"),
        pytest.param("PercentChangeCount", "Increase", 10, 3, 4, id="percent-rounds-away-min-1"),
        pytest.param("PercentChangeCount", "Increase", 34, 3, 5, id="percent-rounds-up"),
        pytest.param("PercentChangeCount", "Decrease", 50, 5, 2, id="percent-down-rounds-away"),
        pytest.param("ExactCount", "Increase", 7, 3, 7, id="exact-up"),
        pytest.param("ExactCount", "Increase", 2, 3, 3, id="exact-increase-never-lowers"),
        pytest.param("ExactCount", "Decrease", 2, 5, 2, id="exact-down"),
        pytest.param("ExactCount", "Decrease", 8, 5, 5, id="exact-decrease-never-raises"),
    ],
)
def test_action_types(
    type_: str, direction: str, value: float, current: int, expected: int
) -> None:
    action = ScaleAction(Direction(direction), ActionType(type_), value, timedelta(minutes=5))
    assert proposed_count(action, current) == expected


def test_per_instance_divides_by_current_replicas() -> None:
    spec = group([rule("backlog", "GreaterThan", 10, per_instance=True)], activation=None)
    # 60 jobs over 4 workers = 15 per worker > 10.
    assert steady(spec, {"backlog": Reading(60)}, current=4).decision.rules[0].observed == 15
    # 60 jobs over 8 workers = 7.5: holds.
    evaluation = steady(spec, {"backlog": Reading(60)}, current=8)
    assert evaluation.decision.rules[0].observed == 7.5
    assert evaluation.decision.action is Action.HOLD


def test_rule_in_cooldown_does_not_fire_and_says_until_when() -> None:
    spec = group([rule("load", "GreaterThan", 10, cooldown=minutes(5))], activation=None)
    warm = steady(spec, {"load": Reading(50)}, current=2)
    assert warm.decision.action is Action.SCALE_OUT
    after = warm.state.after_scale(at=warm.decision.at, was=2, now_is=3)
    evaluation = steady(
        spec,
        {"load": Reading(50)},
        current=3,
        start=warm.decision.at,
        duration=minutes(2),
        state=after,
    )
    decision = evaluation.decision
    assert decision.action is Action.HOLD
    assert decision.reason is Reason.IN_COOLDOWN
    assert decision.rules[0].status is RuleStatus.IN_COOLDOWN
    assert "in cooldown until 2026-11-23T00:10:00Z" in decision.message
    # Once the cooldown is over, the rule fires again.
    later = steady(
        spec,
        {"load": Reading(50)},
        current=3,
        start=decision.at,
        duration=minutes(3.5),
        state=evaluation.state,
    )
    assert later.decision.action is Action.SCALE_OUT


def test_cooldown_blocks_both_directions() -> None:
    spec = group(
        [
            rule("load", "GreaterThan", 70, cooldown=minutes(5)),
            rule("load", "LessThan", 30, "Decrease", cooldown=minutes(5)),
        ],
        activation=None,
    )
    warm = steady(spec, {"load": Reading(90)}, current=2)
    assert warm.decision.action is Action.SCALE_OUT
    state = warm.state.after_scale(at=warm.decision.at, was=2, now_is=3)
    # The load falls at once: the Decrease rule is met but must wait for the same cooldown.
    evaluation = steady(
        spec,
        {"load": Reading(10)},
        current=3,
        start=warm.decision.at,
        duration=minutes(4),
        state=state,
    )
    assert evaluation.decision.reason is Reason.IN_COOLDOWN
    assert evaluation.decision.rules[1].status is RuleStatus.IN_COOLDOWN


def test_insufficient_data_does_not_fire() -> None:
    spec = group([rule("load", "GreaterThan", 10)], activation=None)
    evaluation = steady(spec, {"load": Reading(50)}, current=2, duration=minutes(2))
    assert evaluation.decision.action is Action.HOLD
    assert evaluation.decision.reason is Reason.INSUFFICIENT_DATA
    assert evaluation.decision.message == "insufficient data for load: 3/5 grains"


def test_failed_source_does_not_fire() -> None:
    spec = group([rule("load", "LessThan", 10, "Decrease")], activation=None)
    warm = steady(spec, {"load": Reading(1)}, current=3, duration=minutes(4.75))
    failed = steady(
        spec,
        {"load": Failure("connection refused")},
        current=3,
        start=warm.decision.at,
        duration=timedelta(0),
        state=warm.state,
    )
    assert failed.decision.rules[0].status is RuleStatus.SOURCE_FAILED
    assert failed.decision.target == 3
    assert failed.decision.reason is Reason.SOURCE_FAILED


class TestCombination:
    """Scale out if ANY Increase rule fires; scale in only if ALL Decrease rules fire."""

    def test_any_increase_rule_fires_and_the_largest_wins(self) -> None:
        spec = group(
            [
                rule("queue", "GreaterThan", 10, change=1),
                rule("cpu", "GreaterThan", 70, change=3),
            ],
            activation=None,
        )
        decision = steady(spec, {"queue": Reading(50), "cpu": Reading(90)}, current=2).decision
        assert (decision.action, decision.target) == (Action.SCALE_OUT, 5)
        decision = steady(spec, {"queue": Reading(50), "cpu": Reading(10)}, current=2).decision
        assert (decision.action, decision.target) == (Action.SCALE_OUT, 3)

    def test_scale_in_needs_every_decrease_rule(self) -> None:
        spec = group(
            [
                rule("queue", "Equals", 0, "Decrease", change=1),
                rule("cpu", "LessThan", 50, "Decrease", change=2),
            ],
            activation=None,
        )
        decision = steady(spec, {"queue": Reading(0), "cpu": Reading(60)}, current=5).decision
        assert decision.action is Action.HOLD
        assert decision.reason is Reason.NOT_ALL_DECREASE_RULES_FIRED
        decision = steady(spec, {"queue": Reading(0), "cpu": Reading(20)}, current=5).decision
        # Both fired: the smallest step (-1) wins.
        assert (decision.action, decision.target) == (Action.SCALE_IN, 4)

    def test_increase_beats_decrease(self) -> None:
        spec = group(
            [rule("queue", "GreaterThan", 10), rule("cpu", "LessThan", 50, "Decrease")],
            activation=None,
        )
        decision = steady(spec, {"queue": Reading(50), "cpu": Reading(10)}, current=2).decision
        assert decision.action is Action.SCALE_OUT

    def test_at_maximum_a_firing_rule_holds_and_says_so(self) -> None:
        spec = group([rule("queue", "GreaterThan", 10)], activation=None, maximum=3)
        decision = steady(spec, {"queue": Reading(50)}, current=3).decision
        assert (decision.action, decision.reason) == (Action.HOLD, Reason.AT_BOUND)
        assert "already at maximum 3" in decision.message

    def test_rules_never_take_an_awake_group_to_zero(self) -> None:
        spec = group([rule("queue", "Equals", 0, "Decrease", change=5)], idle_for=minutes(600))
        decision = steady(spec, {"backlog": Reading(0), "queue": Reading(0)}, current=3).decision
        assert decision.target == 1


AZURE_RULES = [
    rule("queue", "GreaterThan", 10, "Increase"),
    rule("cpu", "GreaterThan", 70, "Increase"),
    rule("queue", "Equals", 0, "Decrease"),
    rule("cpu", "LessThan", 50, "Decrease"),
]


@pytest.mark.parametrize(
    ("queue", "cpu", "action", "target"),
    [
        pytest.param(12, 40, Action.SCALE_OUT, 4, id="queue-over-10-scales-out"),
        pytest.param(5, 80, Action.SCALE_OUT, 4, id="cpu-over-70-scales-out"),
        pytest.param(12, 80, Action.SCALE_OUT, 4, id="both-out-rules-still-plus-1"),
        pytest.param(0, 40, Action.SCALE_IN, 2, id="queue-0-and-cpu-under-50-scales-in"),
        pytest.param(0, 60, Action.HOLD, 3, id="queue-0-but-cpu-60-holds"),
        pytest.param(5, 40, Action.HOLD, 3, id="cpu-low-but-queue-not-empty-holds"),
    ],
)
def test_the_azure_four_rule_example(queue: float, cpu: float, action: Action, target: int) -> None:
    spec = group(AZURE_RULES, activation=None, minimum=1)
    decision = steady(spec, {"queue": Reading(queue), "cpu": Reading(cpu)}, current=3).decision
    assert (decision.action, decision.target) == (action, target)
    assert [v.observed for v in decision.rules] == [queue, cpu, queue, cpu]


def test_decisions_start_at_the_given_time() -> None:
    spec = group([rule("load", "GreaterThan", 10)], activation=None)
    assert steady(spec, {"load": Reading(1)}, current=1, duration=timedelta(0)).decision.at == T0


def test_a_decrease_to_an_exact_count_of_zero_scales_in_to_the_floor() -> None:
    # 0 is a count: it used to read as "no count", and the rule held "already at minimum".
    spec = group(
        [rule("load", "LessThan", 1, "Decrease", type="ExactCount", change=0)],
        activation=None,
        minimum=1,
    )
    decision = steady(spec, {"load": Reading(0)}, current=5).decision
    assert (decision.action, decision.target) == (Action.SCALE_IN, 1)
