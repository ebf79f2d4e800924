"""What one pass over a policy saw, decided and did: the unit every report sink receives.

The operator turns it into the policy's status, Events and metrics; `autozero run` into lines on
stdout and a state file. Neither sink reads anything else from the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from autozero.engine.decision import Decision
from autozero.engine.readings import Observation
from autozero.engine.state import GroupState
from autozero.targets.base import Applied, Observed, TargetError


@dataclass(frozen=True)
class GroupReport:
    group: str
    decision: Decision | None = None
    observed: Observed | None = None
    applied: Applied | None = None
    error: TargetError | None = None  # the target could not be observed or changed
    acted: bool = False  # False when paused or in dry run

    @property
    def scaled(self) -> bool:
        return self.applied is not None and self.applied.wrote


@dataclass(frozen=True)
class CycleReport:
    """One pass over a policy. `groups` holds every group's latest report; `evaluated` names
    the groups decided in this pass (the others kept their last decision: nothing changed)."""

    policy: str
    at: datetime
    groups: tuple[GroupReport, ...]
    readings: Mapping[str, Observation]
    evaluated: frozenset[str] = frozenset()
    read: bool = True  # the pass read the sources (not only a workload that changed)
    states: Mapping[str, GroupState] = field(default_factory=dict)  # after the pass
    acting: bool = True  # False: paused or dry run, decisions are reported, not applied
    problems: tuple[str, ...] = ()  # groups observed with GETs because their watch is refused

    def fresh(self) -> tuple[GroupReport, ...]:
        """The reports of the groups decided in this pass."""
        return tuple(g for g in self.groups if g.group in self.evaluated)
