"""A policy's life in the runtime: which reads are decided on, which are only recorded, and what
happens after a write. No servers: the target is an in-memory group with the real write plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from autozero.engine.decision import Action, Reason
from autozero.engine.readings import Failure, Reading
from autozero.engine.state import GroupState
from autozero.policy.parse import parse_policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.life import PolicyLife
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    Standby,
    Step,
    StepKind,
    TargetError,
    plan,
)

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

POLICY = """
apiVersion: autozero.dev/v1alpha1
kind: ScalingPolicy
metadata: {name: p, namespace: ns}
spec:
  pollingInterval: 15s
  metrics:
    - name: backlog
      redis: {url: "redis://127.0.0.1:1/0", key: jobs}
  groups:
    - name: workers
      target: {kubernetes: {apiVersion: apps/v1, kind: Deployment, name: w}}
      capacity: {minimum: 0, maximum: 4, default: 2}
      activation: {metric: backlog, idleFor: 2m}
"""
RULES = """
      profiles:
        - name: default
          rules:
            - {metric: backlog, operator: GreaterThan, threshold: 20,
               action: {direction: Increase, value: 1, cooldown: 1m}}
"""


@dataclass
class Group:
    """An in-memory group: `apply` carries out the real plan, or fails when told to."""

    name: str = "workers"
    replicas: int = 0
    fail: bool = False
    writes: list[tuple[Step, ...]] = field(default_factory=list)

    def observe(self) -> Observed:
        return Observed(self.replicas)

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(change, observed, handoff=False)

    def apply(self, change: Change, observed: Observed, recheck: Any = None) -> Applied:
        steps = self.plan(change, observed)
        if self.fail:
            raise TargetError(self.name, "refused")
        self.writes.append(steps)
        self.replicas = change.replicas
        return Applied(tuple(f"resize {s.was} -> {s.to}" for s in steps))


def life(group: Group, *, rules: bool = False) -> PolicyLife:
    policy = parse_policy(yaml.safe_load(POLICY + (RULES if rules else "")))
    parts = Assembly(sources={}, targets={"workers": group})  # type: ignore[dict-item]
    return PolicyLife.of(policy, parts, {})


def step(subject: PolicyLife, group: Group, at: datetime, read: dict[str, Any] | None) -> set[str]:
    """One pass: plan, carry out the writes, finish. Returns the groups decided."""
    done = subject.plan(at, {"workers": group.observe()}, read=read)
    results: dict[str, Applied | TargetError] = {}
    for write in done.writes:
        try:
            results[write.cell.name] = write.cell.target.apply(write.change, write.observed)
        except TargetError as error:
            results[write.cell.name] = error
    return set(subject.finish(done, results).evaluated)


def queue(pending: float, in_flight: float = 0) -> dict[str, Any]:
    return {"backlog": Reading(pending, pending=pending, in_flight=in_flight)}


def test_an_unchanged_read_of_an_asleep_group_is_recorded_not_decided() -> None:
    group = Group()
    subject = life(group, rules=True)
    assert step(subject, group, T0, queue(0)) == {"workers"}  # the first read is decided
    cell = subject.cells["workers"]
    assert cell.report is not None
    assert cell.report.decision is not None
    assert cell.report.decision.reason is Reason.ASLEEP
    for n in range(1, 5):
        assert step(subject, group, T0 + timedelta(seconds=15 * n), queue(0)) == set()
    assert len(cell.state.windows["backlog"]) == 5  # every read kept, for when it wakes
    assert group.writes == []


def test_work_wakes_the_group_and_its_own_write_is_then_held() -> None:
    group = Group()
    subject = life(group)
    step(subject, group, T0, queue(0))
    assert step(subject, group, T0 + timedelta(seconds=15), queue(7)) == {"workers"}
    assert group.replicas == 2
    decision = subject.cells["workers"].report.decision  # type: ignore[union-attr]
    assert decision is not None
    assert decision.action is Action.WAKE
    # The watch shows the new count: decided again (the observed count changed), and held.
    assert step(subject, group, T0 + timedelta(seconds=16), None) == {"workers"}
    decision = subject.cells["workers"].report.decision  # type: ignore[union-attr]
    assert decision is not None
    assert decision.action is Action.HOLD
    assert step(subject, group, T0 + timedelta(seconds=30), queue(7)) == set()


def test_an_idle_group_is_decided_at_its_deadline_without_new_input() -> None:
    group = Group(replicas=2)
    subject = life(group)
    step(subject, group, T0, queue(0))
    cell = subject.cells["workers"]
    assert cell.deadline == (T0 + timedelta(minutes=2)).timestamp()
    assert step(subject, group, T0 + timedelta(seconds=119), queue(0)) == set()
    assert step(subject, group, T0 + timedelta(minutes=2), queue(0)) == {"workers"}
    assert group.replicas == 0


def test_a_failing_read_is_decided_every_time() -> None:
    group = Group(replicas=1)
    subject = life(group)
    broken = {"backlog": Failure("connection refused", kind="Unreachable")}
    for n in range(3):
        assert step(subject, group, T0 + timedelta(seconds=15 * n), broken) == {"workers"}
    assert subject.cells["workers"].state.failures["backlog"] == 3
    assert group.replicas == 1  # not knowing is not idle


def test_a_failed_write_is_tried_again_at_the_next_read() -> None:
    group = Group(fail=True)
    subject = life(group)
    step(subject, group, T0, queue(0))
    assert step(subject, group, T0 + timedelta(seconds=15), queue(3)) == {"workers"}
    report = subject.cells["workers"].report
    assert report is not None
    assert report.error is not None
    group.fail = False
    assert step(subject, group, T0 + timedelta(seconds=30), queue(3)) == {"workers"}
    assert group.replicas == 2


@dataclass
class PoolGroup(Group):
    """A group with a standby pool of `suspended` VMs (size 1), planned as GCE's."""

    suspended: int = 1

    def observe(self) -> Observed:
        return Observed(self.replicas, suspended=self.suspended, standby_delay=0)

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(change, observed, handoff=False, standby=Standby(size=1))

    def apply(self, change: Change, observed: Observed, recheck: Any = None) -> Applied:
        steps = self.plan(change, observed)
        if self.fail:
            raise TargetError(self.name, "refused")
        self.writes.append(steps)
        self.suspended -= sum(s.to - s.was for s in steps if s.kind is StepKind.FROM_POOL)
        self.replicas = change.replicas
        return Applied(tuple(f"{s.kind} {s.was} -> {s.to}" for s in steps))


def test_a_wake_of_two_writes_keeps_its_count_until_both_are_done() -> None:
    group = PoolGroup()
    subject = life(group)
    step(subject, group, T0, queue(0))
    done = subject.plan(T0 + timedelta(seconds=15), {"workers": group.observe()}, read=queue(3))
    # Resume 1, then create 1: the count is kept before the first write.
    assert [s.kind for s in done.writes[0].steps] == [StepKind.FROM_POOL, StepKind.RESIZE]
    assert subject.cells["workers"].state.finishing == 2
    assert subject.begins(done)
    write = done.writes[0]
    subject.finish(done, {"workers": write.cell.target.apply(write.change, write.observed)})
    assert subject.cells["workers"].state.finishing is None
    assert group.replicas == 2


def test_a_wake_of_one_write_keeps_no_count() -> None:
    group = PoolGroup(suspended=0)
    subject = life(group)
    step(subject, group, T0, queue(0))
    done = subject.plan(T0 + timedelta(seconds=15), {"workers": group.observe()}, read=queue(3))
    assert [s.kind for s in done.writes[0].steps] == [StepKind.RESIZE]
    assert subject.cells["workers"].state.finishing is None
    assert not subject.begins(done)


def test_a_failed_wake_keeps_its_count() -> None:
    group = PoolGroup(fail=True)
    subject = life(group)
    step(subject, group, T0, queue(0))
    step(subject, group, T0 + timedelta(seconds=15), queue(3))
    assert subject.cells["workers"].state.finishing == 2


def test_a_restart_between_the_writes_finishes_the_wake() -> None:
    """Killed after the resume: awake at 1, the pool empty. A restarted life whose state says
    the wake goes to 2 finishes it; one that does not know holds at 1."""
    for kept, expected in ((GroupState(finishing=2), 2), (GroupState(), 1)):
        group = PoolGroup(replicas=1, suspended=0)
        policy = parse_policy(yaml.safe_load(POLICY))
        parts = Assembly(sources={}, targets={"workers": group})  # type: ignore[dict-item]
        subject = PolicyLife.of(policy, parts, {"workers": kept})
        step(subject, group, T0, queue(3))
        assert group.replicas == expected
        decision = subject.cells["workers"].report.decision  # type: ignore[union-attr]
        assert decision is not None
        if kept.finishing:
            assert decision.reason is Reason.UNFINISHED
            assert "finishing the scale-out to 2" in decision.message
            assert subject.cells["workers"].state.finishing is None  # done
        else:
            assert decision.action is Action.HOLD
