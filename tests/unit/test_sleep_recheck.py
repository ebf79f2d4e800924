"""A sleep of several steps asks again, on fresh reads, before the step that takes machines down:
with handoff, the autoscaler's deletion is an operation of seconds (longer when the Compute API
is slow), and jobs start on the group's machines meanwhile. The chaos campaign (seed 23,
`--handoff`) saw a MIG resized to 0 under a job that had started 0.1 s before, on reads made
4.7 s earlier."""

from __future__ import annotations

import pytest
from autozero.engine.activation import why_not_idle
from autozero.engine.durations import parse_duration
from autozero.engine.readings import Failure, Reading
from autozero.engine.spec import Activation
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    PoolWrites,
    SleepWithdrawn,
    Standby,
    converge,
)

HANDED_OFF = Observed(2, autoscaler="autozero-g", owned_autoscaler=True)


class Writes:
    """The callbacks of `converge`, recording what was written and when the recheck came."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason
        self.log: list[str] = []

    def recheck(self) -> str | None:
        self.log.append("recheck")
        return self.reason

    def converge(self, change: Change, observed: Observed, **extra: object) -> Applied:
        def resize(was: int, to: int) -> str:
            self.log.append(f"resize {was} -> {to}")
            return self.log[-1]

        def delete(name: str) -> str:
            self.log.append(f"delete {name}")
            return self.log[-1]

        def create() -> str:
            self.log.append("create")
            return self.log[-1]

        return converge(
            "g",
            change,
            observed,
            handoff=True,
            resize=resize,
            create_autoscaler=create,
            delete_autoscaler=delete,
            foreign=lambda name: name,
            recheck=self.recheck,
            **extra,  # type: ignore[arg-type]
        )


def test_a_handoff_sleep_asks_again_between_the_autoscaler_and_the_resize() -> None:
    writes = Writes(reason=None)
    applied = writes.converge(Change(0, handoff=object()), HANDED_OFF)
    assert writes.log == ["delete autozero-g", "recheck", "resize 2 -> 0"]
    assert applied.steps == ("delete autozero-g", "resize 2 -> 0")


def test_work_come_meanwhile_stops_the_sleep_before_the_resize() -> None:
    writes = Writes(reason="work came: jobs pending=1, in-flight=0")
    with pytest.raises(SleepWithdrawn) as stopped:
        writes.converge(Change(0, handoff=object()), HANDED_OFF)
    assert writes.log == ["delete autozero-g", "recheck"]  # no resize
    said = str(stopped.value)
    assert "work came: jobs pending=1" in said
    assert "delete autozero-g" in said
    assert "left at 2" in said


def test_a_pool_sleep_asks_again_before_deleting_what_the_pool_did_not_take() -> None:
    moved: list[str] = []
    writes = Writes(reason="work came: jobs pending=3, in-flight=0")

    def to_pool(was: int, to: int) -> tuple[str, int, int]:
        moved.append(f"suspend {was - to}")
        return moved[-1], was - to, 0

    pool = PoolWrites(lambda step: "", to_pool, lambda was, to: ("", 0))
    with pytest.raises(SleepWithdrawn):
        writes.converge(
            Change(0),
            Observed(5, standby_delay=0),
            standby=Standby(size=3),
            pool=pool,
        )
    assert moved == ["suspend 3"]
    assert writes.log == ["recheck"]  # the 2 VMs left running were not deleted


@pytest.mark.parametrize(
    ("change", "observed"),
    [
        pytest.param(Change(0), Observed(2), id="a-one-step-sleep-decides-on-its-own-reads"),
        pytest.param(Change(3, handoff=object()), Observed(0), id="a-wake"),
        pytest.param(Change(1, handoff=object()), HANDED_OFF, id="a-scale-in-that-stays-awake"),
    ],
)
def test_no_recheck_where_nothing_came_before_or_nothing_goes_to_zero(
    change: Change, observed: Observed
) -> None:
    writes = Writes(reason="work came")
    writes.converge(change, observed)
    assert "recheck" not in writes.log


ACTIVATION = Activation("jobs", parse_duration("3s"))


@pytest.mark.parametrize(
    ("observations", "expected"),
    [
        pytest.param({"jobs": Reading(0.0, pending=0.0, in_flight=0.0)}, None, id="idle"),
        pytest.param(
            {"jobs": Reading(2.0, pending=2.0, in_flight=0.0)},
            "work came: jobs pending=2, in-flight=0",
            id="pending",
        ),
        pytest.param(
            {"jobs": Reading(0.0, pending=0.0, in_flight=1.0)},
            "work came: jobs pending=0, in-flight=1",
            id="in-flight",
        ),
        pytest.param(
            {"jobs": Reading(0.0, pending=0.0, in_flight=0.0), "cpu": Failure("refused")},
            "cpu unreadable (refused)",
            id="another-metric-failing",
        ),
    ],
)
def test_why_not_idle(observations: dict[str, object], expected: str | None) -> None:
    assert why_not_idle(ACTIVATION, ("cpu", "jobs"), observations) == expected  # type: ignore[arg-type]
