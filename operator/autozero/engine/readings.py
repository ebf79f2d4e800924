"""What a metric source hands the engine each cycle: a Reading, or a Failure to read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    """One read of one metric.

    `value` is what rules compare. Queue sources also say how many jobs wait (`pending`) and how
    many are being worked on (`in_flight`, when the source can know); a group never sleeps while
    either is above zero. `per_instance` carries one value per instance (CPU per VM, say), which the
    grain statistics reduce across instances.
    """

    value: float
    pending: float | None = None
    in_flight: float | None = None
    per_instance: Mapping[str, float] | None = None

    @property
    def pending_or_value(self) -> float:
        return self.value if self.pending is None else self.pending


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed read. `message` must be safe to show: no credentials, no URLs with passwords."""

    message: str
    kind: str = "Error"


Observation = Reading | Failure
