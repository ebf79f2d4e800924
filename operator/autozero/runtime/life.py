"""One policy's life in the runtime: its parts, its groups' state, and the pass that decides them.

Pure of I/O: the runtime hands a pass what was read and observed, gets back the writes to make,
makes them in worker threads, and hands their results back here. Keeping the bookkeeping here and
the scheduling in `runtime.loop` lets both be tested alone.

A group is decided when something it depends on changes: a read with different values, a
different observed count or autoscaler, its decision's deadline, or any read while its last
decision says every read matters (rules reading sample windows, a source failing). Otherwise a
read is only recorded (`engine.decide.record`), which keeps the windows full for when it wakes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from autozero.engine.decide import decide, record
from autozero.engine.decision import Action
from autozero.engine.readings import Failure, Observation
from autozero.engine.state import GroupState
from autozero.policy.model import GroupPolicy, Policy
from autozero.runtime.assemble import Assembly
from autozero.runtime.report import CycleReport, GroupReport
from autozero.targets.base import (
    Applied,
    Change,
    Observed,
    ScaleTarget,
    Step,
    StepKind,
    TargetError,
)

PolicyKey = tuple[str, str]  # (namespace, name)


def unfinishable(steps: tuple[Step, ...], was: int, to: int) -> bool:
    """A scale-out that takes more than one write to resize (pool VMs resumed, then the rest
    created): a crash between them leaves the group awake short of `to`, which nothing
    observable says, so `to` is kept in the state first (`GroupState.finishing`)."""
    sizing = (StepKind.FROM_POOL, StepKind.TO_POOL, StepKind.RESIZE)
    return to > was and sum(1 for s in steps if s.kind in sizing) > 1


@dataclass
class GroupCell:
    """One group's runtime record: its engine state and what its last decision was made on."""

    group: GroupPolicy
    target: ScaleTarget
    state: GroupState = field(default_factory=GroupState)
    inputs: tuple[Any, ...] | None = None  # (observations..., observed) of the last decision
    report: GroupReport | None = None
    deadline: float | None = None  # unix seconds; None: no decision waits on time alone

    @property
    def name(self) -> str:
        return self.group.name


@dataclass(frozen=True)
class Write:
    """A change one group's target must carry out (in a worker thread)."""

    cell: GroupCell
    change: Change
    observed: Observed
    steps: tuple[Step, ...]


@dataclass
class Pass:
    """What one pass decided, between planning and the report."""

    at: datetime
    writes: list[Write]
    decided: dict[str, GroupReport]  # group -> report, writes not yet carried out
    read: bool = False  # fresh reads came with the pass


@dataclass
class PolicyLife:
    key: PolicyKey
    policy: Policy
    parts: Assembly
    cells: dict[str, GroupCell]
    readings: dict[str, Observation] = field(default_factory=dict)

    @classmethod
    def of(cls, policy: Policy, parts: Assembly, states: Mapping[str, GroupState]) -> PolicyLife:
        cells = {
            g.name: GroupCell(g, parts.targets[g.name], states.get(g.name, GroupState()))
            for g in policy.groups
            if not g.skip
        }
        return cls((policy.namespace, policy.name), policy, parts, cells)

    @property
    def acting(self) -> bool:
        return not (self.policy.paused or self.policy.dry_run)

    @property
    def states(self) -> dict[str, GroupState]:
        return {name: cell.state for name, cell in self.cells.items()}

    def metrics(self) -> set[str]:
        """The metrics some served group reads (a skipped group's are not read)."""
        return {m for cell in self.cells.values() for m in cell.group.engine.metrics}

    def next_deadline(self) -> float | None:
        due = [c.deadline for c in self.cells.values() if c.deadline is not None]
        return min(due) if due else None

    def plan(
        self,
        now: datetime,
        observed: Mapping[str, Observed | TargetError],
        *,
        read: Mapping[str, Observation] | None = None,
        force: Collection[str] = (),
    ) -> Pass:
        """Decide the groups that need it. `read`: this pass's fresh reads (None: none were
        made, e.g. a workload changed); `observed`: every group's target as now known."""
        if read is not None:
            self.readings.update(read)
        decided: dict[str, GroupReport] = {}
        writes: list[Write] = []
        for name, cell in self.cells.items():
            spec = cell.group.engine
            seen = {m: self.readings[m] for m in spec.metrics if m in self.readings}
            target = observed.get(name)
            if target is None or isinstance(target, TargetError):
                # Unobservable: nothing to decide on; the samples are kept all the same.
                if read is not None:
                    cell.state = record(spec, cell.state, seen, now)
                error = target if isinstance(target, TargetError) else None
                decided[name] = GroupReport(name, error=error)
                cell.inputs, cell.deadline = None, None
                continue
            inputs = (*(seen.get(m) for m in spec.metrics), target)
            if not self._due(cell, inputs, now, fresh=read is not None, forced=name in force):
                if read is not None:
                    cell.state = record(spec, cell.state, seen, now)
                continue
            evaluation = decide(spec, cell.state, seen, now=now, current=target.replicas)
            decision = evaluation.decision
            cell.state, cell.inputs = evaluation.state, inputs
            # A decision that reads every read is asked again at the next read; a deadline
            # would only replay the last read, counted twice.
            deadline = None if decision.every_read_matters else decision.deadline
            cell.deadline = None if deadline is None else deadline.timestamp()
            decided[name] = GroupReport(name, decision, target, acted=self.acting)
            if not self.acting:
                continue
            change = Change(decision.target, cell.group.handoff, decision.message)
            steps = cell.target.plan(change, target)
            if steps:
                writes.append(Write(cell, change, target, steps))
            if unfinishable(steps, target.replicas, change.replicas):
                cell.state = replace(cell.state, finishing=change.replicas)
        return Pass(now, writes, decided, read is not None)

    @staticmethod
    def begins(done: Pass) -> bool:
        """Whether a write of the pass is a scale-out of several writes, whose count must be
        kept (`Shell.begin`) before its first."""
        return any(w.cell.state.finishing == w.change.replicas for w in done.writes)

    @staticmethod
    def _due(
        cell: GroupCell, inputs: tuple[Any, ...], now: datetime, *, fresh: bool, forced: bool
    ) -> bool:
        last = cell.report.decision if cell.report is not None else None
        if forced or last is None or inputs != cell.inputs:
            return True
        if cell.deadline is not None and now.timestamp() >= cell.deadline:
            return True
        # A failing read counts towards the failure threshold even when it fails the same way.
        failing = any(isinstance(i, Failure) for i in inputs)
        return fresh and (last.every_read_matters or failing)

    def finish(
        self,
        done: Pass,
        results: Mapping[str, Applied | TargetError],
        problems: tuple[str, ...] = (),
    ) -> CycleReport:
        """Record the writes' outcomes and make the pass's report (every group's latest)."""
        for write in done.writes:
            name = write.cell.name
            result = results[name]
            report = done.decided[name]
            if isinstance(result, TargetError):
                done.decided[name] = GroupReport(
                    name, report.decision, report.observed, error=result, acted=True
                )
                # Ask again at the next read: the write may succeed then (a scale-out left
                # half done keeps its `finishing` count, and is finished then).
                write.cell.inputs = None
                continue
            done.decided[name] = GroupReport(
                name, report.decision, report.observed, result, acted=True
            )
            decision = report.decision
            if decision is not None and decision.action is not Action.HOLD:
                write.cell.state = write.cell.state.after_scale(
                    at=done.at, was=decision.current, now_is=decision.target
                )
            elif write.cell.state.finishing is not None:
                write.cell.state = replace(write.cell.state, finishing=None)
        for name, report in done.decided.items():
            self.cells[name].report = report
        return CycleReport(
            self.policy.name,
            done.at,
            tuple(c.report for c in self.cells.values() if c.report is not None),
            {m: r for m, r in self.readings.items() if m in self.metrics()},
            frozenset(done.decided),
            done.read,
            self.states,
            self.acting,
            problems,
        )
