"""What the engine remembers about a group between cycles, as a plain value the caller keeps.

The operator keeps the durable part (idle-since, last scale time, recent scale events) in the
policy's status and the rest in memory; the standalone runner keeps all of it in a JSON file.
Both go through `to_json`/`from_json`, and a restored state decides exactly as the original would.

Why the recommendation history need not be durable: a decision that finds none counts the
current count as recommended now (as the HPA does when it first sees a workload), and after a
restart the sample windows start empty, so the rules recommend the current count until they
refill: a lost history can delay a scale-in or a stabilized scale-out, never hasten one. A lost
scale event could let a rate policy allow more than its rate once, so recent scale events are
kept with the idle clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from autozero.engine.aggregate import Window

#: (unix time, count): a recommendation of the rules, or (unix time, change) a scale event.
Timed = tuple[float, int]


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC).isoformat()


def _parse_time(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def _pairs(data: Any) -> tuple[Timed, ...]:
    return tuple((float(at), int(count)) for at, count in data or ())


@dataclass(frozen=True, slots=True)
class GroupState:
    """Times are unix seconds (floats) so the hot path never builds datetimes.

    `highs` and `lows` are the rules' recent recommendations for the stabilization windows,
    kept as monotonic queues: `highs` holds only recommendations above every later one (so the
    highest in any recent window is the first inside it), `lows` only those below every later
    one. Both stay as short as the number of distinct counts, whatever the window's length.
    `scale_events` are the changes between two non-zero counts within the longest rate period.
    """

    windows: Mapping[str, Window] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)  # consecutive failed reads
    idle_since: float | None = None
    last_scale_at: float | None = None
    highs: tuple[Timed, ...] = ()
    lows: tuple[Timed, ...] = ()
    scale_events: tuple[Timed, ...] = ()
    # The count a change of several writes (resume from a standby pool, then create the rest)
    # was taking the group up to, kept from before its first write until its last is done: a
    # restart between them finishes it rather than hold the group at the half-way count.
    finishing: int | None = None

    def after_scale(self, *, at: datetime, was: int, now_is: int) -> GroupState:
        """The state once a change was applied at `at`: it starts every rule's cooldown, a step
        between two non-zero counts is a scale event for the rate policies, and a Wake or Sleep
        restarts idle tracking and forgets recommendations and scale events (waking is
        activation's, not the rate policies' business; what the rules said before the group
        slept says nothing about now)."""
        when = at.timestamp()
        if 0 in (was, now_is):
            return replace(
                self,
                last_scale_at=when,
                idle_since=None,
                highs=(),
                lows=(),
                scale_events=(),
                finishing=None,
            )
        events = (*self.scale_events, (when, now_is - was)) if now_is != was else self.scale_events
        return replace(self, last_scale_at=when, scale_events=events, finishing=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "windows": {
                metric: {
                    "times": list(window.times),
                    "values": list(window.values),
                    "instances": list(window.instances),
                }
                for metric, window in self.windows.items()
            },
            "failures": dict(self.failures),
            "idleSince": _time(self.idle_since),
            "lastScaleAt": _time(self.last_scale_at),
            # Unix seconds, as the windows: they round-trip exactly.
            "recommendations": {
                "highs": [list(p) for p in self.highs],
                "lows": [list(p) for p in self.lows],
            },
            "scaleEvents": [list(p) for p in self.scale_events],
            "finishing": self.finishing,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupState:
        windows = {
            str(metric): Window(
                tuple(float(t) for t in window["times"]),
                tuple(float(v) for v in window["values"]),
                tuple(str(i) for i in window.get("instances", ())),
            )
            for metric, window in data.get("windows", {}).items()
        }
        recommendations = data.get("recommendations") or {}
        return cls(
            windows=windows,
            failures={str(k): int(v) for k, v in data.get("failures", {}).items()},
            idle_since=_parse_time(data.get("idleSince")),
            last_scale_at=_parse_time(data.get("lastScaleAt")),
            highs=_pairs(recommendations.get("highs")),
            lows=_pairs(recommendations.get("lows")),
            scale_events=_pairs(data.get("scaleEvents")),
            finishing=None if data.get("finishing") is None else int(data["finishing"]),
        )
