"""`targets.base.plan` with a standby pool: which writes, in which order, from what is observed;
and a half-done change (a crash between two writes) planned to its end."""

from __future__ import annotations

import pytest
from autozero.targets.base import Change, Observed, Standby, Step, StepKind, plan

POOL = Standby(size=3)
K = StepKind


def kinds(steps: tuple[Step, ...]) -> list[tuple[StepKind, int, int]]:
    return [(s.kind, s.was, s.to) for s in steps]


@pytest.mark.parametrize(
    ("observed", "to", "handoff", "expected"),
    [
        pytest.param(
            Observed(5, standby_delay=0),
            0,
            False,
            [(K.TO_POOL, 5, 2), (K.RESIZE, 2, 0)],
            id="sleep-fills-the-pool-deletes-the-rest",
        ),
        pytest.param(
            Observed(2, standby_delay=0),
            0,
            False,
            [(K.TO_POOL, 2, 0)],
            id="sleep-all-fit",
        ),
        pytest.param(
            Observed(2, suspended=3, standby_delay=0),
            0,
            False,
            [(K.RESIZE, 2, 0)],
            id="sleep-with-a-full-pool-deletes",
        ),
        pytest.param(
            Observed(0, suspended=3, standby_delay=0),
            2,
            False,
            [(K.FROM_POOL, 0, 2)],
            id="wake-from-the-pool",
        ),
        pytest.param(
            Observed(0, suspended=3, standby_delay=0),
            5,
            False,
            [(K.FROM_POOL, 0, 3), (K.RESIZE, 3, 5)],
            id="wake-larger-than-the-pool",
        ),
        pytest.param(
            Observed(0, suspended=3, standby_delay=0),
            5,
            True,
            [(K.FROM_POOL, 0, 3), (K.RESIZE, 3, 5), (K.CREATE_AUTOSCALER, 0, 0)],
            id="wake-with-handoff-then-the-autoscaler",
        ),
        pytest.param(
            Observed(3, suspended=0, standby_delay=0),
            5,
            True,
            [(K.RESIZE, 3, 5), (K.CREATE_AUTOSCALER, 0, 0)],
            id="crash-after-resume-before-resize",
        ),
        pytest.param(
            Observed(2, suspended=3, standby_delay=0),
            0,
            False,
            [(K.RESIZE, 2, 0)],
            id="crash-after-suspend-before-resize",
        ),
        pytest.param(
            Observed(0, suspended=5, standby_delay=30),
            0,
            False,
            [(K.SET_POOL, 5, 3)],
            id="a-pool-too-large-and-a-delay-changed",
        ),
        pytest.param(
            Observed(0, stopped=2, standby_delay=0),
            0,
            False,
            [(K.SET_POOL, 0, 0)],
            id="the-other-kind-of-pool-is-emptied",
        ),
        pytest.param(Observed(0, suspended=3, standby_delay=0), 0, False, [], id="asleep-idle"),
        pytest.param(
            Observed(
                4, suspended=0, standby_delay=0, autoscaler="autozero-g", owned_autoscaler=True
            ),
            4,
            True,
            [],
            id="awake-idle",
        ),
    ],
)
def test_plan_with_a_pool(
    observed: Observed, to: int, handoff: bool, expected: list[tuple[StepKind, int, int]]
) -> None:
    assert kinds(plan(Change(to), observed, handoff=handoff, standby=POOL)) == expected


def test_without_a_pool_nothing_changes() -> None:
    observed = Observed(5, suspended=3)
    assert kinds(plan(Change(0), observed, handoff=False)) == [(K.RESIZE, 5, 0)]
    assert kinds(plan(Change(2), Observed(0, suspended=3), handoff=False)) == [(K.RESIZE, 0, 2)]


def test_sleep_with_handoff_deletes_the_autoscaler_before_the_pool_moves() -> None:
    observed = Observed(4, standby_delay=0, autoscaler="autozero-g", owned_autoscaler=True)
    steps = plan(Change(0), observed, handoff=True, standby=POOL)
    assert [s.kind for s in steps] == [K.DELETE_AUTOSCALER, K.TO_POOL, K.RESIZE]


def test_a_stopped_pool_counts_stopped_vms() -> None:
    pool = Standby(size=2, stopped=True)
    observed = Observed(0, stopped=2, standby_delay=0)
    assert kinds(plan(Change(3), observed, handoff=False, standby=pool)) == [
        (K.FROM_POOL, 0, 2),
        (K.RESIZE, 2, 3),
    ]


@pytest.mark.parametrize(
    ("wakes_from_zero", "expected"),
    [
        pytest.param(True, [], id="gce-autoscaler-holds-its-minimum"),
        pytest.param(False, [(K.RESIZE, 0, 2)], id="hpa-disabled-at-zero"),
    ],
)
def test_an_awake_group_at_0_under_its_autoscaler_is_resized_only_if_it_would_stay_there(
    wakes_from_zero: bool, expected: list[tuple[StepKind, int, int]]
) -> None:
    observed = Observed(0, autoscaler="autozero-g", owned_autoscaler=True)
    steps = plan(Change(2), observed, handoff=True, wakes_from_zero=wakes_from_zero)
    assert kinds(steps) == expected
    awake = Observed(3, autoscaler="autozero-g", owned_autoscaler=True)
    assert plan(Change(2), awake, handoff=True, wakes_from_zero=wakes_from_zero) == ()
