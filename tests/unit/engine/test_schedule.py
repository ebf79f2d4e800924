"""Which profile is active: recurrences in their own time zone across DST and week wrap-around."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from autozero.engine.schedule import active_profile, next_boundary
from autozero.engine.spec import Capacity, FixedDate, GroupSpec, Profile, Recurrence

MON_FRI = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def spec(*profiles: Profile) -> GroupSpec:
    return GroupSpec("g", Capacity(0, 10, 1), profiles=(*profiles, Profile("default")))


def recurring(
    name: str,
    days: frozenset[int],
    hour: int,
    minute: int = 0,
    tz: str = "Europe/Paris",
    duration: timedelta | None = None,
) -> Profile:
    return Profile(name, recurrence=Recurrence(tz, days, (hour,), (minute,), duration))


OFFICE = recurring("office", MON_FRI, 8, duration=timedelta(hours=10))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Winter (CET, UTC+1): 08:00 Paris is 07:00 UTC.
        pytest.param(utc(2026, 3, 27, 6, 59), "default", id="winter-friday-before-start"),
        pytest.param(utc(2026, 3, 27, 7, 0), "office", id="winter-friday-at-start"),
        pytest.param(utc(2026, 3, 27, 16, 59), "office", id="winter-friday-before-end"),
        pytest.param(utc(2026, 3, 27, 17, 0), "default", id="winter-friday-after-duration"),
        # DST began Sunday 29 March: 08:00 Paris is now 06:00 UTC.
        pytest.param(utc(2026, 3, 30, 5, 59), "default", id="summer-monday-before-start"),
        pytest.param(utc(2026, 3, 30, 6, 0), "office", id="summer-monday-at-start"),
        pytest.param(utc(2026, 3, 28, 10, 0), "default", id="saturday"),
        # DST ended Sunday 25 October: back to 07:00 UTC on Monday 26.
        pytest.param(utc(2026, 10, 26, 6, 30), "default", id="autumn-monday-before-start"),
        pytest.param(utc(2026, 10, 26, 7, 0), "office", id="autumn-monday-at-start"),
    ],
)
def test_office_hours_across_dst(now: datetime, expected: str) -> None:
    assert active_profile(spec(OFFICE), now).profile.name == expected


def test_a_recurrence_runs_until_the_next_profile_starts_across_sunday_midnight() -> None:
    weekend = recurring("weekend", frozenset({5}), 0, tz="UTC")  # Saturday 00:00
    weekday = recurring("weekday", MON_FRI, 6, tz="UTC")  # Monday-Friday 06:00
    profiles = spec(weekend, weekday)
    assert active_profile(profiles, utc(2026, 11, 21, 0, 0)).profile.name == "weekend"  # Sat
    assert active_profile(profiles, utc(2026, 11, 22, 23, 59)).profile.name == "weekend"  # Sun
    assert active_profile(profiles, utc(2026, 11, 23, 3, 0)).profile.name == "weekend"  # Mon 3am
    assert active_profile(profiles, utc(2026, 11, 23, 6, 0)).profile.name == "weekday"
    assert active_profile(profiles, utc(2026, 11, 27, 23, 0)).profile.name == "weekday"  # Fri


def test_a_sunday_night_window_wraps_into_monday() -> None:
    late = recurring(
        "sunday-batch", frozenset({6}), 22, tz="Europe/Paris", duration=timedelta(hours=4)
    )
    profiles = spec(late)
    # Sunday 22 Nov 22:00 Paris = 21:00 UTC; runs until Monday 02:00 Paris = 01:00 UTC.
    assert active_profile(profiles, utc(2026, 11, 22, 20, 59)).profile.name == "default"
    assert active_profile(profiles, utc(2026, 11, 22, 23, 30)).profile.name == "sunday-batch"
    active = active_profile(profiles, utc(2026, 11, 23, 0, 59))
    assert active.profile.name == "sunday-batch"
    assert active.until == utc(2026, 11, 23, 1, 0)
    assert active_profile(profiles, utc(2026, 11, 23, 1, 0)).profile.name == "default"


def test_a_start_in_the_spring_forward_gap_happens_after_the_jump() -> None:
    # 02:30 does not exist in Paris on 29 March 2026: clocks go 02:00 CET -> 03:00 CEST.
    gap = recurring("gap", frozenset({6}), 2, 30, duration=timedelta(hours=1))
    profiles = spec(gap)
    assert active_profile(profiles, utc(2026, 3, 29, 1, 29)).profile.name == "default"
    active = active_profile(profiles, utc(2026, 3, 29, 1, 31))
    assert active.profile.name == "gap"
    assert active.since == utc(2026, 3, 29, 1, 30)  # 03:30 CEST


def test_a_start_in_the_repeated_autumn_hour_happens_once_at_its_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 25 October 2026 (CEST then CET).
    twice = recurring("twice", frozenset({6}), 2, 30, duration=timedelta(minutes=10))
    profiles = spec(twice)
    assert active_profile(profiles, utc(2026, 10, 25, 0, 35)).profile.name == "twice"  # CEST
    assert active_profile(profiles, utc(2026, 10, 25, 1, 35)).profile.name == "default"  # CET


def test_fixed_dates_win_over_recurrences() -> None:
    launch = Profile(
        "launch",
        fixed_date=FixedDate(utc(2026, 11, 27, 0, 0), utc(2026, 11, 28, 0, 0)),
    )
    profiles = spec(OFFICE, launch)
    assert active_profile(profiles, utc(2026, 11, 27, 10, 0)).profile.name == "launch"
    assert active_profile(profiles, utc(2026, 11, 26, 10, 0)).profile.name == "office"
    assert active_profile(profiles, utc(2026, 11, 28, 0, 0)).profile.name == "default"


def test_without_a_default_profile_the_group_capacity_applies() -> None:
    bare = GroupSpec("g", Capacity(0, 3, 1), profiles=(OFFICE,))
    active = active_profile(bare, utc(2026, 11, 28, 12, 0))
    assert active.profile.name == "default"
    assert bare.capacity_of(active.profile) == Capacity(0, 3, 1)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Tokyo", "Pacific/Kiritimati"])
def test_zones_far_from_utc_find_their_own_local_start(zone: str) -> None:
    from zoneinfo import ZoneInfo

    profile = recurring("morning", EVERY_DAY, 9, tz=zone, duration=timedelta(hours=1))
    local_start = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(zone))
    assert active_profile(spec(profile), local_start + timedelta(minutes=30)).profile.name == (
        "morning"
    )
    assert active_profile(spec(profile), local_start - timedelta(minutes=1)).profile.name == (
        "default"
    )


def test_a_fixed_date_in_the_callers_own_zone_counts_the_repeated_hour_twice() -> None:
    from zoneinfo import ZoneInfo

    # 25 October 2026 in Paris: 02:30 CEST (00:30 UTC) to the second 02:10, in CET (01:10 UTC).
    # Aware datetimes sharing a tzinfo compare by wall clock, blind to `fold`; at 02:50 CEST the
    # window is open though 02:50 is "after" 02:10 on the wall.
    paris = ZoneInfo("Europe/Paris")
    short = Profile(
        "short",
        fixed_date=FixedDate(
            datetime(2026, 10, 25, 2, 30, tzinfo=paris),
            datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=paris),
        ),
    )
    now = datetime(2026, 10, 25, 2, 50, tzinfo=paris)
    assert now.astimezone(UTC) == utc(2026, 10, 25, 0, 50)
    assert active_profile(spec(short), now).profile.name == "short"
    assert next_boundary(spec(short), now) == utc(2026, 10, 25, 1, 10)
