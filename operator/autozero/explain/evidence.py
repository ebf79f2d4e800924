"""What an explanation is made from, whoever gathered it: the same for the operator's status,
a simulation and `autozero run`, so the three explain alike.

A decision is kept in its JSON shape (`autozero.decisions.decision_json`), the one the status,
`simulate --output jsonl` and `run --output json` share.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from autozero.policy.model import Policy

#: (unix seconds, count): a recommendation of the rules, or (unix seconds, change) a scale event.
Timed = tuple[float, int]


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as the status writes it (Z or an offset), or None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Recent:
    """A decision that changed the count (or would have, paused), or an Event about the group."""

    time: datetime
    what: str  # an action (Wake, ScaleIn...), WouldWake..., or an Event's reason
    message: str

    def to_json(self) -> dict[str, str]:
        return {"time": _z(self.time), "what": self.what, "message": self.message}


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Recommendations:
    """The rules' recent recommendations the stabilization windows read (`GroupState`)."""

    highs: tuple[Timed, ...] = ()
    lows: tuple[Timed, ...] = ()


@dataclass(frozen=True)
class GroupEvidence:
    name: str
    decision: Mapping[str, Any] | None = None  # the last decision, as JSON; None: none yet
    error: str | None = None  # the target could not be observed or changed
    idle_since: datetime | None = None
    last_scale: datetime | None = None  # starts every threshold rule's cooldown
    scale_events: tuple[Timed, ...] = ()  # what the rate policies count
    recommendations: Recommendations | None = None  # None: not known where this came from
    failures: Mapping[str, int] | None = None  # consecutive failed reads; None: not known
    recent: tuple[Recent, ...] = ()  # oldest first
    applied: bool = True  # the last decision was carried out (not paused, no error)
    # The standby pool beside the running count ({"suspended": n, "stopped": n}); None: not
    # known where this came from (a simulation).
    pool: Mapping[str, int] | None = None
    finishing: int | None = None  # a scale-out a restart interrupted, to this count


@dataclass(frozen=True)
class Evidence:
    """One policy: its parsed spec (None when it cannot be parsed), what was decided for each
    of its groups, and the conditions and Events said about it."""

    namespace: str
    name: str
    now: datetime
    origin: str  # "status", "simulation" or "run": where the evidence comes from
    policy: Policy | None
    groups: Mapping[str, GroupEvidence] = field(default_factory=dict)
    readings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # status.metrics
    conditions: tuple[Mapping[str, Any], ...] = ()
    events: tuple[Recent, ...] = ()  # about the policy as a whole (SourceFailed...), oldest first
    problems: tuple[str, ...] = ()  # why it could not be read whole (Events refused...)


def reading_json(observation: Any) -> dict[str, Any]:
    """A read as the status's `metrics` shows it: its value, pending and in flight, or its error."""
    from autozero.engine.readings import Reading

    if isinstance(observation, Reading):
        return {
            "value": observation.value,
            "pending": observation.pending,
            "inFlight": observation.in_flight,
        }
    return {"error": observation.message, "kind": observation.kind}
