"""What the engine remembers about a group between cycles, as a plain value the caller keeps.

The operator keeps the durable part (idle-since, last scale time) in the policy's status and the
sample windows in memory; the standalone runner keeps all of it in a JSON file. Both go through
`to_json`/`from_json`, and a restored state decides exactly as the original would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from autozero.engine.aggregate import Window


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC).isoformat()


def _parse_time(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


@dataclass(frozen=True, slots=True)
class GroupState:
    """Times are unix seconds (floats) so the hot path never builds datetimes."""

    windows: Mapping[str, Window] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)  # consecutive failed reads
    idle_since: float | None = None
    last_scale_at: float | None = None

    def after_scale(self, *, at: datetime, was: int, now_is: int) -> GroupState:
        """The state once a change was applied at `at`: it starts every rule's cooldown, and a
        Wake or Sleep restarts idle tracking (a step between two non-zero counts does not)."""
        idle_since = None if 0 in (was, now_is) else self.idle_since
        return replace(self, last_scale_at=at.timestamp(), idle_since=idle_since)

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
        return cls(
            windows=windows,
            failures={str(k): int(v) for k, v in data.get("failures", {}).items()},
            idle_since=_parse_time(data.get("idleSince")),
            last_scale_at=_parse_time(data.get("lastScaleAt")),
        )
