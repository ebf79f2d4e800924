"""A metric source and a target kind written outside the package, as a contributor writes a new
one: one module each (here, one for both), which tests/unit/test_plugins.py registers with one
line per registry to prove that nothing else needs an edit.

- `tally`: a count of pending jobs kept in this process (`COUNTS`).
- `memory`: a group whose replica count is kept in this process (`REPLICAS`), refused by the
  tenancy checks in zone `forbidden`, with an access check for the operator's reviews, and a
  handoff (`memoryAutoscaler`) to an autoscaler that holds the count at its ceiling.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from autozero.engine.readings import Reading
from autozero.policy.fields import Schema, integer, obj, string
from autozero.policy.model import Policy
from autozero.sources.base import BaseSource, Context, SourceConfigError, SourceKind
from autozero.targets.base import Applied, Change, Observed, ScaleTarget, Step, TargetError, plan
from autozero.targets.kind import (
    AccessCheck,
    Assembled,
    Environment,
    HandoffKind,
    Refusal,
    TargetKind,
)

COUNTS: dict[str, float] = {}  # counter -> pending jobs
REPLICAS: dict[str, int] = {}  # group name (in the `memory` settings) -> replicas
OBSERVED: list[set[str]] = []  # the groups of each batched observation


def reset() -> None:
    COUNTS.clear()
    REPLICAS.clear()
    OBSERVED.clear()


# The source.


@dataclass
class Tally(BaseSource):
    metric: str
    counter: str

    @classmethod
    def from_settings(cls, metric: str, settings: Mapping[str, Any], ctx: Context) -> Tally:
        if settings["counter"].startswith("-"):
            raise SourceConfigError(metric, "counter", "a counter's name starts with a letter")
        return cls(metric, settings["counter"])

    def read(self) -> Reading:
        pending = COUNTS.get(self.counter, 0.0)
        return Reading(pending, pending=pending, in_flight=0.0)


def _tally_schema() -> Schema:
    return obj(
        "A count of jobs kept in memory.",
        {"counter": string("The counter's name.", minLength=1)},
        required=["counter"],
    )


SOURCE = SourceKind(
    key="tally",
    what="a tally",
    unit="jobs",
    schema=_tally_schema,
    build=Tally.from_settings,
    example={"counter": "jobs"},
)


# The target kind.


@dataclass(frozen=True, slots=True)
class MemoryTarget:
    name: str
    zone: str


@dataclass(frozen=True, slots=True)
class MemoryHandoff:
    ceiling: int


@dataclass
class MemoryGroup:
    """The ScaleTarget: the count in `REPLICAS`."""

    name: str
    target: MemoryTarget

    def observe(self) -> Observed:
        return Observed(REPLICAS.get(self.target.name, 0))

    def plan(self, change: Change, observed: Observed) -> tuple[Step, ...]:
        return plan(change, observed, handoff=False)

    def apply(self, change: Change, observed: Observed, recheck: Any = None) -> Applied:
        steps = self.plan(change, observed)
        REPLICAS[self.target.name] = change.replicas
        return Applied(tuple(f"set {s.was} -> {s.to}" for s in steps))


def _assemble(policy: Policy, groups: Mapping[str, MemoryTarget], env: Environment) -> Assembled:
    targets: dict[str, ScaleTarget] = {n: MemoryGroup(n, t) for n, t in groups.items()}

    def observe(wanted: Collection[str]) -> dict[str, Observed | TargetError]:
        mine = [n for n in targets if n in wanted]
        OBSERVED.append(set(mine))
        return {n: targets[n].observe() for n in mine}

    return Assembled(targets, observe)


def _refusals(policy: Policy, group: str, target: MemoryTarget, config: Any) -> list[Refusal]:
    if target.zone != "forbidden":
        return []
    return [Refusal(group, "ZoneForbidden", f"zone forbidden is closed to {policy.namespace}")]


def _access_checks(target: MemoryGroup, handoff: MemoryHandoff | None) -> list[AccessCheck]:
    checks = [AccessCheck("patch", "memory.example", "groups", "scale", target.target.name)]
    if handoff is not None:
        checks.append(AccessCheck("create", "memory.example", "autoscalers"))
    return checks


@dataclass
class CeilingModel:
    """What `autozero simulate` predicts the memory autoscaler does: hold the ceiling."""

    handoff: MemoryHandoff
    group: str
    name: str = "memory autoscaler"

    @property
    def signals(self) -> tuple[str, ...]:
        return ()

    def start(self, at: float, replicas: int) -> None:
        pass

    def step(self, at: float, replicas: int, readings: Mapping[str, float]) -> tuple[int, str]:
        return self.handoff.ceiling, "the ceiling"


TARGET = TargetKind(
    key="memory",
    spec=MemoryTarget,
    schema=lambda: obj(
        "A group kept in memory.",
        {"name": string("Its name.", minLength=1), "zone": string("Its zone.", minLength=1)},
        required=["name", "zone"],
    ),
    parse=lambda settings: MemoryTarget(settings["name"], settings["zone"]),
    render=lambda target: {"name": target.name, "zone": target.zone},
    assemble=_assemble,
    refusals=_refusals,
    access_checks=_access_checks,
    handoff=HandoffKind(
        key="memoryAutoscaler",
        autoscaler="memory autoscaler",
        schema=lambda: obj(
            "An autoscaler kept in memory.",
            {"ceiling": integer("The count it holds.", minimum=1)},
            required=["ceiling"],
        ),
        parse=lambda settings: MemoryHandoff(settings["ceiling"]),
        render=lambda handoff: {"ceiling": handoff.ceiling},
        model=CeilingModel,
        named=lambda target: f"memory-{target.name}",
        examples=({"ceiling": 3},),
    ),
    examples=({"name": "w", "zone": "a"},),
)
