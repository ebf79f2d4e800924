"""Which profile is active at `now`: fixed dates first, then weekly recurrences, else the default.

A recurrence starts at each of its `days` x `hours` x `minutes`, as wall-clock times in its own
time zone, and runs until the next start of any recurrence profile (Azure's rule), or until its
`duration` is over. Wall-clock times are turned into instants with zoneinfo: across a DST change a
start keeps its local time (08:00 stays 08:00); a start inside the spring-forward gap happens once
the clocks have jumped, and one in the repeated autumn hour happens at its first occurrence.

`next_boundary` says when the answer can next change, so a caller need not ask every minute. Both
come from one span per set of recurrences, the latest start and the next one, found from the
same wall-clock starts, so they agree across DST; the span is memoised until its next start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from autozero.engine.spec import GroupSpec, Profile, Recurrence

#: Local days searched around `now`: a week back (a weekly start is always within it) plus one
#: day for zones ahead of UTC, and a week ahead plus one day for zones behind it.
_DAYS_AROUND = range(-7, 9)
_SPAN_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class ActiveProfile:
    profile: Profile
    since: datetime | None  # when its current run began; None for the default profile
    until: datetime | None  # when it ends, when that is known


@dataclass(frozen=True, slots=True)
class _Span:
    """Between two starts of a set of recurrences, which one started last does not change."""

    since: datetime  # the latest start (or, with none, the instant this was computed for)
    until: datetime | None  # the next start; None: no start ahead at all
    latest: tuple[int, datetime] | None  # (index into the recurrences, start)

    def covers(self, now: datetime) -> bool:
        return self.since <= now and (self.until is None or now < self.until)


_spans: dict[tuple[Recurrence, ...], _Span] = {}


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _starts_around(recurrence: Recurrence, now: datetime) -> list[datetime]:
    """The starts of `recurrence` on the local days around `now`, as aware UTC datetimes."""
    zone = _zone(recurrence.time_zone)
    today: date = now.astimezone(zone).date()
    found: list[datetime] = []
    for offset in _DAYS_AROUND:
        day = today + timedelta(days=offset)
        if day.weekday() not in recurrence.days:
            continue
        for hour in recurrence.hours:
            for minute in recurrence.minutes:
                wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                # Normalise through UTC so a time in the DST gap moves past it.
                found.append(wall.astimezone(UTC))
    return found


def _find_span(recurrences: tuple[Recurrence, ...], now: datetime) -> _Span:
    latest: tuple[int, datetime] | None = None
    upcoming: datetime | None = None
    for index, recurrence in enumerate(recurrences):
        for start in _starts_around(recurrence, now):
            if start <= now:
                # Strictly later only: at equal starts the first profile listed wins.
                if latest is None or start > latest[1]:
                    latest = (index, start)
            elif upcoming is None or start < upcoming:
                upcoming = start
    return _Span(now if latest is None else latest[1], upcoming, latest)


def _span(recurrences: tuple[Recurrence, ...], now: datetime) -> _Span:
    """The span of `recurrences` around `now` (UTC), memoised: a group asks about the same
    recurrences every evaluation, and the answer holds until their next start."""
    span = _spans.get(recurrences)
    if span is None or not span.covers(now):
        span = _find_span(recurrences, now)
        if len(_spans) >= _SPAN_CACHE_SIZE:
            _spans.clear()
        _spans[recurrences] = span
    return span


def active_profile(spec: GroupSpec, now: datetime) -> ActiveProfile:
    """The profile in force at `now` (an aware datetime)."""
    if not spec.scheduled_profiles:
        return ActiveProfile(spec.default_profile, None, None)
    # In UTC: aware datetimes that share a tzinfo compare by wall clock, blind to DST's fold.
    now = now.astimezone(UTC)
    for profile in spec.scheduled_profiles:
        window = profile.fixed_date
        if window is not None and window.start <= now < window.end:
            return ActiveProfile(profile, window.start, window.end)
    if spec.recurrences:
        latest = _span(spec.recurrences, now).latest
        if latest is not None:
            profile = spec.recurring_profiles[latest[0]]
            assert profile.recurrence is not None
            duration = profile.recurrence.duration
            if duration is None:
                return ActiveProfile(profile, latest[1], None)
            if now < latest[1] + duration:
                return ActiveProfile(profile, latest[1], latest[1] + duration)
    return ActiveProfile(spec.default_profile, None, None)


def next_boundary(spec: GroupSpec, now: datetime) -> datetime | None:
    """The earliest instant strictly after `now` at which the active profile may change, in UTC;
    None if it never will (no scheduled profile, or none that starts or ends again).

    Conservative: every fixed date's start and end and every recurrence's next start count, even
    when another profile would stay active across them; the active run's `duration` end counts.
    """
    return boundary_after(spec, now, active_profile(spec, now))


def boundary_after(spec: GroupSpec, now: datetime, active: ActiveProfile) -> datetime | None:
    """`next_boundary` for a caller that already knows the profile `active` at `now`."""
    if not spec.scheduled_profiles:
        return None
    # Everything in UTC: aware datetimes that share a tzinfo compare by wall clock, blind to fold.
    now = now.astimezone(UTC)
    until = None if active.until is None else active.until.astimezone(UTC)
    best = until if until is not None and until > now else None
    for profile in spec.scheduled_profiles:
        window = profile.fixed_date
        if window is not None:
            for edge in (window.start.astimezone(UTC), window.end.astimezone(UTC)):
                if edge > now and (best is None or edge < best):
                    best = edge
    if spec.recurrences:
        start = _span(spec.recurrences, now).until
        if start is not None and (best is None or start < best):
            best = start
    return best
