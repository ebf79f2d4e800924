"""Which profile is active at `now`: fixed dates first, then weekly recurrences, else the default.

A recurrence starts at each of its `days` x `hours` x `minutes`, as wall-clock times in its own
time zone, and runs until the next start of any recurrence profile (Azure's rule), or until its
`duration` is over. Wall-clock times are turned into instants with zoneinfo: across a DST change a
start keeps its local time (08:00 stays 08:00); a start inside the spring-forward gap happens once
the clocks have jumped, and one in the repeated autumn hour happens at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from autozero.engine.spec import GroupSpec, Profile, Recurrence

_LOOKBACK_DAYS = 8  # one week back, plus one day for time zones ahead of UTC


@dataclass(frozen=True, slots=True)
class ActiveProfile:
    profile: Profile
    since: datetime | None  # when its current run began; None for the default profile
    until: datetime | None  # when it ends, when that is known


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _starts(recurrence: Recurrence, now: datetime) -> list[datetime]:
    """Every start of `recurrence` within the look-back period before `now`, as aware datetimes."""
    zone = _zone(recurrence.time_zone)
    today: date = now.astimezone(zone).date()
    found: list[datetime] = []
    for back in range(_LOOKBACK_DAYS):
        day = today - timedelta(days=back)
        if day.weekday() not in recurrence.days:
            continue
        for hour in recurrence.hours:
            for minute in recurrence.minutes:
                wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                # Normalise through UTC so a time in the DST gap moves past it.
                found.append(wall.astimezone(UTC))
    return found


@lru_cache(maxsize=4096)
def _latest_start(recurring: tuple[Profile, ...], minute: int) -> tuple[int, datetime] | None:
    """(index into `recurring`, start) of the most recent start at or before the given minute."""
    now = datetime.fromtimestamp(minute * 60 + 59.999, tz=UTC)
    best: tuple[int, datetime] | None = None
    for index, profile in enumerate(recurring):
        assert profile.recurrence is not None
        for start in _starts(profile.recurrence, now):
            if start <= now and (best is None or start > best[1]):
                best = (index, start)
    return best


def active_profile(spec: GroupSpec, now: datetime) -> ActiveProfile:
    """The profile in force at `now` (an aware datetime)."""
    for profile in spec.scheduled_profiles:
        window = profile.fixed_date
        if window is not None and window.start <= now < window.end:
            return ActiveProfile(profile, window.start, window.end)
    recurring = tuple(p for p in spec.scheduled_profiles if p.recurrence is not None)
    if recurring:
        latest = _latest_start(recurring, int(now.timestamp() // 60))
        if latest is not None and latest[1] <= now:
            profile = recurring[latest[0]]
            assert profile.recurrence is not None
            duration = profile.recurrence.duration
            if duration is None:
                return ActiveProfile(profile, latest[1], None)
            if now < latest[1] + duration:
                return ActiveProfile(profile, latest[1], latest[1] + duration)
    return ActiveProfile(spec.default_profile, None, None)
