"""The HPA's behavior: rate policies (Pods, Percent; Max, Min, Disabled) and stabilization."""

from __future__ import annotations

from datetime import timedelta

import pytest
from autozero.engine.behavior import rate_limit, remember, stabilize
from autozero.engine.decide import decide
from autozero.engine.decision import Action, Reason
from autozero.engine.readings import Reading
from autozero.engine.spec import Behavior, ScalingRules
from autozero.engine.state import GroupState, Timed
from support.engine import HPA_DEFAULT, T0, group, minutes, rates, rule, simulate, target

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("current", "desired", "events", "rules", "expected"),
    [
        pytest.param(1, 20, (), rates(("Pods", 4, 15)), 5, id="pods-up"),
        pytest.param(3, 20, (), rates(("Percent", 100, 15)), 6, id="percent-up"),
        pytest.param(
            1, 20, (), rates(("Pods", 4, 15), ("Percent", 100, 15)), 5, id="max-picks-pods-at-1"
        ),
        pytest.param(
            10, 40, (), rates(("Pods", 4, 15), ("Percent", 100, 15)), 20, id="max-picks-percent"
        ),
        pytest.param(
            10,
            40,
            (),
            rates(("Pods", 4, 15), ("Percent", 100, 15), select="Min"),
            14,
            id="min-picks-pods",
        ),
        pytest.param(1, 3, (), rates(("Pods", 4, 15)), 3, id="within-the-rate"),
        pytest.param(
            # 1 -> 5 five seconds ago: the period started at 1, and 1 + 4 = 5 is reached.
            5,
            20,
            ((NOW - 5, 4),),
            rates(("Pods", 4, 15)),
            5,
            id="events-in-the-period-count",
        ),
        pytest.param(
            5, 20, ((NOW - 15, 4),), rates(("Pods", 4, 15)), 9, id="an-event-a-period-old-not"
        ),
        pytest.param(
            # A scale-down within the period raises the period's starting count.
            5,
            20,
            ((NOW - 5, -5),),
            rates(("Pods", 4, 15)),
            14,
            id="scale-down-events-count-for-up",
        ),
        pytest.param(
            # In integers: the HPA's float gives ceil(10 * 1.1) = 12.
            10,
            40,
            (),
            rates(("Percent", 10, 15)),
            11,
            id="percent-in-integers",
        ),
        pytest.param(10, 1, (), rates(("Percent", 50, 60)), 5, id="percent-down"),
        pytest.param(10, 1, (), rates(("Pods", 2, 60)), 8, id="pods-down"),
        pytest.param(
            10, 1, (), rates(("Pods", 2, 60), ("Percent", 50, 60)), 5, id="down-max-largest-change"
        ),
        pytest.param(
            10,
            1,
            (),
            rates(("Pods", 2, 60), ("Percent", 50, 60), select="Min"),
            8,
            id="down-min-smallest-change",
        ),
        pytest.param(9, 1, (), rates(("Percent", 50, 60)), 4, id="percent-down-truncates"),
        pytest.param(1, 20, (), rates(select="Disabled"), 1, id="disabled-up"),
        pytest.param(10, 1, (), rates(select="Disabled"), 10, id="disabled-down"),
        pytest.param(1, 20, (), rates(window=60), 20, id="no-policies-no-limit"),
        pytest.param(1, 20, (), None, 20, id="no-behavior-no-limit"),
    ],
)
def test_rate_limit(
    current: int,
    desired: int,
    events: tuple[Timed, ...],
    rules: ScalingRules | None,
    expected: int,
) -> None:
    assert rate_limit(current, desired, events, rules, now=NOW).count == expected


@pytest.mark.parametrize(
    ("current", "recommended", "highs", "lows", "windows", "expected"),
    [
        pytest.param(8, 3, ((NOW - 100, 8),), (), (0, 300), 8, id="down-held-by-a-higher"),
        pytest.param(8, 3, ((NOW - 300, 8),), (), (0, 300), 3, id="down-a-window-old-not"),
        pytest.param(8, 3, ((NOW - 200, 6),), (), (0, 300), 6, id="down-to-the-highest"),
        pytest.param(8, 3, ((NOW - 100, 8),), (), (0, 0), 3, id="down-no-window"),
        pytest.param(2, 10, (), ((NOW - 30, 2),), (60, 0), 2, id="up-held-by-a-lower"),
        pytest.param(2, 10, (), ((NOW - 30, 5),), (60, 0), 5, id="up-to-the-lowest"),
        pytest.param(2, 10, (), ((NOW - 60, 2),), (60, 0), 10, id="up-a-window-old-not"),
    ],
)
def test_stabilize(
    current: int,
    recommended: int,
    highs: tuple[Timed, ...],
    lows: tuple[Timed, ...],
    windows: tuple[float, float],
    expected: int,
) -> None:
    assert stabilize(current, recommended, highs, lows, now=NOW, windows=windows).count == expected


def test_recommendations_are_kept_as_short_monotonic_queues() -> None:
    highs: tuple[Timed, ...] = ()
    lows: tuple[Timed, ...] = ()
    for n, count in enumerate([5, 8, 6, 6, 3, 7, 2]):
        highs, lows = remember(highs, lows, NOW + n, count, (100, 100))
    # Highs: each above every later one; lows: each below every later one.
    assert highs == ((NOW + 1, 8), (NOW + 5, 7), (NOW + 6, 2))
    assert lows == ((NOW + 6, 2),)
    # Older than the longest window: forgotten.
    highs, lows = remember(highs, lows, NOW + 200, 1, (100, 100))
    assert highs == ((NOW + 200, 1),)


# --- through decide ---------------------------------------------------------------------------


def q(value: float) -> dict[str, Reading]:
    return {"q": Reading(value, pending=value, in_flight=0)}


def test_the_hpa_default_reaches_20_from_1_in_45_seconds() -> None:
    spec = group([target("q", average_value=50)], activation="q", maximum=20, behavior=HPA_DEFAULT)
    decisions = simulate(spec, lambda *_: q(1000), start=T0, end=T0 + minutes(2), current=1)
    moves = [
        (int((d.at - T0).total_seconds()), d.target) for d in decisions if d.target != d.current
    ]
    assert moves == [(0, 5), (15, 10), (30, 20)]
    limited = decisions[0]
    assert limited.reason is Reason.RATE_LIMITED
    assert limited.message.startswith("scale-out to 20 limited to 5 by behavior.scaleUp")


def test_autozero_default_scales_up_at_once_and_down_after_five_minutes() -> None:
    spec = group([target("q", average_value=50)], activation="q", maximum=20)

    def feed(now: object, _current: int) -> dict[str, Reading]:
        return q(1000 if now < T0 + minutes(2) else 100)  # type: ignore[operator]

    decisions = simulate(spec, feed, start=T0, end=T0 + minutes(10), current=1)
    moves = [
        (int((d.at - T0).total_seconds()), d.target) for d in decisions if d.target != d.current
    ]
    # The last recommendation of 20 was at 1:45; it leaves the 5-minute window at 6:45.
    assert moves == [(0, 20), (405, 2)]
    held = next(d for d in decisions if d.at == T0 + minutes(3))
    assert (held.action, held.reason, held.target, held.recommended) == (
        Action.HOLD,
        Reason.STABILIZED,
        20,
        2,
    )
    assert "the highest recommendation within the 5m scaleDown stabilization window was 20" in (
        held.message
    )


def test_threshold_rules_alone_are_not_stabilized_by_default() -> None:
    spec = group(
        [rule("q", "LessThan", 10, "Decrease", window=minutes(2), cooldown=minutes(0))],
        activation=None,
        minimum=1,
    )
    decisions = simulate(spec, lambda *_: q(0), start=T0, end=T0 + minutes(3), current=5)
    first = next(d for d in decisions if d.target != d.current)
    assert first.at == T0 + minutes(1)  # as soon as both grains of the window hold data


def test_an_explicit_scale_down_window_applies_to_threshold_rules_too() -> None:
    spec = group(
        [rule("q", "LessThan", 10, "Decrease", window=minutes(2), cooldown=minutes(0))],
        activation=None,
        minimum=1,
        behavior=Behavior(scale_down=rates(window=120)),
    )
    decisions = simulate(spec, lambda *_: q(0), start=T0, end=T0 + minutes(5), current=5)
    first = next(d for d in decisions if d.target != d.current)
    # The rule held (insufficient data) until 0:45; that recommendation leaves the 2-minute
    # window at 2:45.
    assert first.at == T0 + timedelta(minutes=2, seconds=45)


def test_a_scale_up_window_waits_for_the_lowest_recent_recommendation() -> None:
    spec = group(
        [target("q", average_value=50)],
        activation=None,
        minimum=1,
        maximum=20,
        behavior=Behavior(scale_up=rates(window=60)),
    )

    def feed(now: object, _current: int) -> dict[str, Reading]:
        return q(100 if now < T0 + minutes(1) else 1000)  # type: ignore[operator]

    decisions = simulate(spec, feed, start=T0, end=T0 + minutes(3), current=2)
    moves = [
        (int((d.at - T0).total_seconds()), d.target) for d in decisions if d.target != d.current
    ]
    assert moves == [(105, 20)]  # the last recommendation of 2 was at 0:45


def test_disabled_scale_down_never_lowers_but_a_profile_maximum_does() -> None:
    spec = group(
        [target("q", average_value=50)],
        activation=None,
        minimum=1,
        maximum=4,
        behavior=Behavior(scale_down=rates(select="Disabled")),
    )
    evaluation = decide(spec, GroupState(), q(0), now=T0, current=3)
    assert (evaluation.decision.target, evaluation.decision.reason) == (3, Reason.RATE_LIMITED)
    above = decide(spec, GroupState(), q(0), now=T0, current=9)
    assert (above.decision.target, above.decision.reason) == (4, Reason.SCHEDULE_MAXIMUM)


def test_a_wake_and_a_sleep_forget_recommendations_and_scale_events() -> None:
    state = GroupState(highs=((NOW, 9),), lows=((NOW, 1),), scale_events=((NOW, 4),))
    at = T0
    for was, now_is in ((0, 3), (3, 0)):
        after = state.after_scale(at=at, was=was, now_is=now_is)
        assert (after.highs, after.lows, after.scale_events) == ((), (), ())
    step = state.after_scale(at=at, was=3, now_is=7)
    assert step.scale_events == ((NOW, 4), (at.timestamp(), 4))


def test_a_fresh_start_counts_the_current_count_as_recommended_as_the_hpa_does() -> None:
    # The HPA seeds its recommendations with the current count when it first sees a workload,
    # so neither a fresh start nor a restart (nor a wake) can scale in within the window.
    spec = group([target("q", average_value=50)], activation=None, minimum=1, maximum=20)
    decisions = simulate(spec, lambda *_: q(100), start=T0, end=T0 + minutes(6), current=8)
    moves = [
        (int((d.at - T0).total_seconds()), d.target) for d in decisions if d.target != d.current
    ]
    assert moves == [(300, 2)]
    assert decisions[0].reason is Reason.STABILIZED
