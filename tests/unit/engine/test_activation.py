"""Waking from zero and going back to zero; failures, fallback, handoff, bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from autozero.engine.decide import decide
from autozero.engine.decision import Action, Decision, Reason
from autozero.engine.readings import Failure, Observation, Reading
from autozero.engine.spec import Capacity, FailurePolicy, GroupSpec, Profile
from autozero.engine.state import GroupState
from support.engine import T0, group, minutes, rule, simulate, steady


def test_pending_work_wakes_a_group_at_once_to_the_default_count() -> None:
    spec = group(default=3)
    decision = decide(spec, GroupState(), {"backlog": Reading(5, pending=5)}, now=T0, current=0)
    assert decision.decision.action is Action.WAKE
    assert decision.decision.target == 3
    assert decision.decision.reason is Reason.WORK_PENDING
    assert decision.decision.message == "work pending: backlog pending=5, in-flight=unknown"


@pytest.mark.parametrize(
    ("minimum", "default", "maximum", "expected"),
    [
        pytest.param(0, 0, 10, 1, id="default-0-wakes-to-1"),
        pytest.param(0, 4, 10, 4, id="default"),
        pytest.param(2, 1, 10, 2, id="minimum-above-default"),
        pytest.param(0, 12, 10, 10, id="default-above-maximum"),
    ],
)
def test_wake_count(minimum: int, default: int, maximum: int, expected: int) -> None:
    spec = group(minimum=minimum, default=default, maximum=maximum)
    evaluation = decide(spec, GroupState(), {"backlog": Reading(1)}, now=T0, current=0)
    assert evaluation.decision.target == expected


def test_asleep_with_nothing_pending_holds_at_zero() -> None:
    evaluation = decide(
        group(), GroupState(), {"backlog": Reading(0, in_flight=0)}, now=T0, current=0
    )
    assert (evaluation.decision.action, evaluation.decision.reason) == (Action.HOLD, Reason.ASLEEP)


def test_asleep_with_an_unreadable_source_stays_asleep_and_says_why() -> None:
    failed = {"backlog": Failure("redis: connection refused")}
    decision = decide(group(), GroupState(), failed, now=T0, current=0).decision
    assert (decision.target, decision.reason) == (0, Reason.SOURCE_FAILED)
    assert "redis: connection refused" in decision.message


def _queue(pending_until: datetime, in_flight_until: datetime) -> object:
    def feed(now: datetime, _current: int) -> dict[str, Observation]:
        pending = 100 if now < pending_until else 0
        in_flight = 3 if now < in_flight_until else 0
        return {"backlog": Reading(pending, pending=pending, in_flight=in_flight)}

    return feed


def test_sleeps_only_after_idle_for_with_nothing_in_flight() -> None:
    spec = group(idle_for=minutes(30))
    decisions = simulate(
        spec,
        _queue(T0 + minutes(10), T0 + minutes(20)),  # type: ignore[arg-type]
        start=T0,
        end=T0 + minutes(60),
        current=2,
    )
    sleeps = [d for d in decisions if d.action is Action.SLEEP]
    assert len(sleeps) == 1
    assert sleeps[0].at == T0 + minutes(50)  # in-flight ended at 20, plus 30 minutes idle
    assert sleeps[0].reason is Reason.IDLE
    assert sleeps[0].message == "idle 30m: backlog pending=0, in-flight=0"
    # The last hold before it explains how long the group has been idle.
    before = [
        d
        for d in decisions
        if d.at
        == T0
        + minutes(
            49,
        )
    ]
    assert before[0].message.endswith("idle 29m of 30m")


def test_a_failed_read_restarts_the_idle_clock() -> None:
    spec = group(idle_for=minutes(10))

    def feed(now: datetime, _current: int) -> dict[str, Observation]:
        if now == T0 + minutes(8):
            return {"backlog": Failure("timeout")}
        return {"backlog": Reading(0, pending=0, in_flight=0)}

    decisions = simulate(spec, feed, start=T0, end=T0 + minutes(30), current=1)
    sleep = next(d for d in decisions if d.action is Action.SLEEP)
    assert sleep.at == T0 + minutes(
        18,
    ) + timedelta(seconds=15)
    failed = next(d for d in decisions if d.at == T0 + minutes(8))
    assert failed.idle_since is None
    assert failed.failing == ("backlog",)


def test_any_failing_source_of_the_group_blocks_sleep() -> None:
    spec = group([rule("cpu", "GreaterThan", 80)], idle_for=minutes(5))
    observations: dict[str, Observation] = {
        "backlog": Reading(0, pending=0, in_flight=0),
        "cpu": Failure("prometheus: 503"),
    }
    evaluation = steady(spec, observations, current=2, duration=minutes(20))
    assert evaluation.decision.target == 2
    assert evaluation.decision.failing == ("cpu",)
    assert evaluation.decision.degraded == ("cpu",)


def test_a_profile_minimum_keeps_the_group_awake() -> None:
    spec = group(minimum=1, idle_for=minutes(5))
    evaluation = steady(spec, {"backlog": Reading(0, in_flight=0)}, current=1, duration=minutes(20))
    assert evaluation.decision.action is Action.HOLD
    assert "profile minimum 1 keeps the group awake" in evaluation.decision.message


def test_a_profile_minimum_wakes_a_sleeping_group() -> None:
    decision = decide(group(minimum=2), GroupState(), {"backlog": Reading(0)}, now=T0, current=0)
    assert (decision.decision.action, decision.decision.target) == (Action.WAKE, 2)
    assert decision.decision.reason is Reason.SCHEDULE_MINIMUM


def test_bounds_clamp_an_awake_group() -> None:
    spec = group(maximum=4, minimum=0)
    decision = decide(spec, GroupState(), {"backlog": Reading(9)}, now=T0, current=7).decision
    assert (decision.action, decision.target, decision.reason) == (
        Action.SCALE_IN,
        4,
        Reason.SCHEDULE_MAXIMUM,
    )


def test_failing_source_never_lowers_even_to_the_maximum() -> None:
    spec = group(maximum=4)
    decision = decide(spec, GroupState(), {"backlog": Failure("down")}, now=T0, current=7).decision
    assert (decision.target, decision.reason) == (7, Reason.SOURCE_FAILED)


class TestFallback:
    policy = FailurePolicy(threshold=3, fallback_replicas=4)

    def _run(self, current: int, reads: int) -> Decision:
        spec = group(failure=self.policy)
        state = GroupState()
        evaluation = None
        for n in range(reads):
            evaluation = decide(
                spec, state, {"backlog": Failure("down")}, now=T0 + minutes(n), current=current
            )
            state = evaluation.state
        assert evaluation is not None
        return evaluation.decision

    def test_below_the_threshold_nothing_happens(self) -> None:
        decision = self._run(current=1, reads=2)
        assert decision.target == 1
        assert decision.degraded == ()

    def test_degraded_group_rises_to_fallback(self) -> None:
        decision = self._run(current=1, reads=3)
        assert (decision.action, decision.target, decision.reason) == (
            Action.SCALE_OUT,
            4,
            Reason.FALLBACK,
        )
        assert decision.degraded == ("backlog",)

    def test_degraded_group_at_zero_wakes_to_fallback(self) -> None:
        decision = self._run(current=0, reads=3)
        assert (decision.action, decision.target) == (Action.WAKE, 4)

    def test_fallback_never_lowers(self) -> None:
        decision = self._run(current=8, reads=5)
        assert decision.target == 8

    def test_recovery_resets_the_count(self) -> None:
        spec = group(failure=self.policy)
        state = GroupState()
        for n in range(5):
            failed = {"backlog": Failure("x")}
            state = decide(spec, state, failed, now=T0 + minutes(n), current=1).state
        assert state.failures == {"backlog": 5}
        state = decide(spec, state, {"backlog": Reading(1)}, now=T0, current=1).state
        assert state.failures == {"backlog": 0}


class TestFlappingGuard:
    def test_scale_in_that_would_flap_holds(self) -> None:
        # 2 workers at 60 % CPU; going to 1 would mean 120 % > 80: hold.
        spec = group(
            [
                rule("cpu", "GreaterThan", 80, statistic="Average"),
                rule("cpu", "LessThan", 70, "Decrease", statistic="Average"),
            ],
            activation=None,
        )
        cpu = Reading(60, per_instance={"vm-a": 60, "vm-b": 60})
        decision = steady(spec, {"cpu": cpu}, current=2).decision
        assert (decision.action, decision.reason) == (Action.HOLD, Reason.WOULD_FLAP)
        assert decision.message == "scale-in to 1 would flap: cpu estimate 120 > 80"

    def test_a_smaller_step_is_taken_when_it_does_not_flap(self) -> None:
        # 10 workers at 40 %: -5 would give 80 > 75, but 9 workers gives 44.4: fine... and the
        # smallest count that does not flap is 6 (66.7 %).
        spec = group(
            [
                rule("cpu", "GreaterThan", 75),
                rule("cpu", "LessThan", 50, "Decrease", change=5),
            ],
            activation=None,
        )
        cpu = Reading(40, per_instance={f"vm-{n}": 40 for n in range(10)})
        decision = steady(spec, {"cpu": cpu}, current=10).decision
        assert (decision.action, decision.target) == (Action.SCALE_IN, 6)
        assert "stepped to 6" in decision.message

    def test_a_total_backlog_is_not_spread_over_instances(self) -> None:
        spec = group(
            [rule("queue", "GreaterThan", 10), rule("queue", "LessThan", 5, "Decrease")],
            activation=None,
        )
        decision = steady(spec, {"queue": Reading(4)}, current=2).decision
        assert (decision.action, decision.target) == (Action.SCALE_IN, 1)

    def test_per_instance_rules_are_estimated(self) -> None:
        spec = group(
            [
                rule("queue", "GreaterThan", 10, per_instance=True),
                rule("queue", "LessThan", 8, "Decrease", per_instance=True),
            ],
            activation=None,
        )
        # 42 jobs over 6 = 7 per worker (< 8): to 5 would be 8.4, fine.
        decision = steady(spec, {"queue": Reading(42)}, current=6).decision
        assert (decision.action, decision.target) == (Action.SCALE_IN, 5)
        # 56 over 6 = 9.3 per worker: not < 8, hold.
        decision = steady(spec, {"queue": Reading(56)}, current=6).decision
        assert decision.action is Action.HOLD


def test_handoff_only_decides_awake_or_asleep() -> None:
    spec = group([rule("cpu", "GreaterThan", 10)], handoff=True, default=2, idle_for=minutes(5))
    woke = decide(
        spec, GroupState(), {"backlog": Reading(3), "cpu": Reading(99)}, now=T0, current=0
    )
    assert (woke.decision.action, woke.decision.target) == (Action.WAKE, 2)
    busy = steady(spec, {"backlog": Reading(3), "cpu": Reading(99)}, current=6)
    assert (busy.decision.action, busy.decision.reason) == (Action.HOLD, Reason.HANDOFF)
    assert busy.decision.rules == ()
    idle = steady(
        spec,
        {"backlog": Reading(0, in_flight=0), "cpu": Reading(99)},
        current=6,
        duration=minutes(6),
    )
    assert idle.decision.action is Action.SLEEP


# --- the activation threshold (KEDA's activationValue) ---------------------------------------


def _thresholded(threshold: float, unit: str = "messages", **kwargs: object) -> GroupSpec:
    spec = group(idle_for=minutes(10), **kwargs)  # type: ignore[arg-type]
    assert spec.activation is not None
    return replace(spec, activation=replace(spec.activation, threshold=threshold, unit=unit))


@pytest.mark.parametrize(
    ("threshold", "pending", "action"),
    [
        pytest.param(0, 1, Action.WAKE, id="default-0-any-work-wakes"),
        pytest.param(0, 0, Action.HOLD, id="default-0-nothing-pending"),
        pytest.param(5, 5, Action.HOLD, id="at-the-threshold-stays-asleep"),
        pytest.param(5, 6, Action.WAKE, id="above-the-threshold-wakes"),
        pytest.param(0.05, 0.04, Action.HOLD, id="a-ratio-below-its-threshold"),
    ],
)
def test_the_activation_threshold_decides_the_wake(
    threshold: float, pending: float, action: Action
) -> None:
    spec = _thresholded(threshold)
    reads = {"backlog": Reading(pending, pending=pending, in_flight=0)}
    decision = decide(spec, GroupState(), reads, now=T0, current=0).decision
    assert decision.action is action


def test_a_group_at_or_below_the_threshold_counts_as_idle_and_sleeps() -> None:
    spec = _thresholded(5)
    # 4 messages wait, none in flight: below the threshold is idle; after 10 minutes, sleep.
    decisions = simulate(
        spec,
        lambda _now, _current: {"backlog": Reading(4, pending=4, in_flight=0)},
        start=T0,
        end=T0 + minutes(11),
        current=2,
    )
    sleep = next(d for d in decisions if d.action is Action.SLEEP)
    assert sleep.at == T0 + minutes(10)
    assert sleep.message == "idle 10m: backlog pending=4, in-flight=0 (activation threshold 5)"


def test_above_the_threshold_is_not_idle_and_the_hold_says_so_in_its_unit() -> None:
    spec = _thresholded(5)
    reads = {"backlog": Reading(6, pending=6, in_flight=0)}
    decision = steady(spec, reads, current=2, duration=minutes(20)).decision
    assert decision.action is Action.HOLD
    assert decision.message.endswith("backlog: 6 messages pending (activation threshold 5)")


def test_in_flight_work_keeps_a_group_awake_below_the_threshold() -> None:
    spec = _thresholded(5)
    reads = {"backlog": Reading(0, pending=0, in_flight=2)}
    decision = steady(spec, reads, current=2, duration=minutes(20)).decision
    assert decision.action is Action.HOLD
    assert decision.message.endswith("backlog: 2 messages in flight")


def test_a_query_without_unit_is_never_called_jobs() -> None:
    # The newcomer's case: CPU as the activation metric, with a threshold, at 20 %.
    spec = _thresholded(0.05, unit="")
    reads = {"backlog": Reading(0.2)}
    decision = steady(spec, reads, current=1, duration=minutes(20)).decision
    assert decision.action is Action.HOLD
    assert "jobs" not in decision.message
    assert decision.message.endswith("backlog is 0.2, above its activation threshold 0.05")


# --- the group's capacity caps every profile -------------------------------------------------


def test_a_profile_cannot_lift_the_group_maximum() -> None:
    launch = Profile("launch", capacity=Capacity(10, 60, 10))
    spec = replace(group(maximum=30), profiles=(launch,))
    decision = decide(spec, GroupState(), {"backlog": Reading(9)}, now=T0, current=45).decision
    assert (decision.target, decision.reason) == (30, Reason.SCHEDULE_MAXIMUM)
    asleep = decide(spec, GroupState(), {"backlog": Reading(0)}, now=T0, current=0).decision
    assert asleep.target == 10  # the profile's minimum, within the group's bounds


def test_a_profile_cannot_lower_the_group_minimum() -> None:
    night = Profile("night", capacity=Capacity(0, 4, 1))
    spec = replace(group(minimum=2, maximum=10), profiles=(night,))
    decision = decide(spec, GroupState(), {"backlog": Reading(0)}, now=T0, current=0).decision
    assert (decision.action, decision.target) == (Action.WAKE, 2)
