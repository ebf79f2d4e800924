"""Go-style durations (`30s`, `5m`, `1h30m`, `250ms`): the unit every time field of a policy uses.

Go's syntax because Kubernetes users already write it (HPA behaviour, KEDA, kubectl flags).
Negative durations and bare numbers are refused: a bare `30` is ambiguous, so we ask for a unit.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
#: The same grammar as a JSON-schema pattern, for the CRD.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


class DurationError(ValueError):
    """A duration string that does not parse; carries the text that was given."""

    def __init__(self, text: str, why: str) -> None:
        self.text = text
        super().__init__(f"invalid duration {text!r}: {why} (write e.g. 30s, 5m, 1h30m)")


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m` into a timedelta. Units: ms, s, m, h; each part a non-negative number."""
    if not isinstance(text, str):
        raise DurationError(str(text), "expected a string with a unit")
    stripped = text.strip()
    if not stripped:
        raise DurationError(text, "empty")
    position = 0
    seconds = 0.0
    for match in _PART.finditer(stripped):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(stripped):
        if stripped.lstrip("+-").replace(".", "", 1).isdigit():
            raise DurationError(text, "a unit is required")
        raise DurationError(text, f"unexpected {stripped[position:]!r}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:  # past timedelta's limit, some 2.7 million years
        raise DurationError(text, "too long") from None


def format_duration(value: timedelta) -> str:
    """The shortest Go-style text for a duration: 90s -> `1m30s`, 0 -> `0s`."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms < 0:
        raise ValueError("negative durations have no text form")
    if total_ms == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
