"""KEDA's cron trigger (a start and an end cron expression) as a weekly recurrence.

A recurrence starts at `days` x `hours` x `minutes` and lasts `duration`, so only cron windows of
that shape convert: start and end at a fixed minute and hour ("0 6 * * 1-5"), any day of the
month and month ("*"), the same days of the week (or the end's "*"), and the end after the start
within a day (or before it, ending the next day). Anything else (a day of the month, a month, a
step like */15, an end on other days) is refused with the reason, never approximated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
#: cron's days (0 or 7 = Sunday, 1 = Monday) -> Python's weekday (0 = Monday ... 6 = Sunday).
_TO_WEEKDAY = {0: 6, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6}


class CronUnsupported(ValueError):
    """A cron window no weekly recurrence can express; says why."""


@dataclass(frozen=True, slots=True)
class Window:
    days: frozenset[int]  # Python weekdays: 0 = Monday
    hour: int
    minute: int
    duration: timedelta


def _number(text: str, low: int, high: int, what: str) -> int:
    if not text.isdigit():
        raise CronUnsupported(f"{what} {text!r} is not a single number")
    value = int(text)
    if not low <= value <= high:
        raise CronUnsupported(f"{what} {value} is out of range {low}-{high}")
    return value


def _day(text: str) -> int:
    lowered = text.lower()
    if lowered in _DAY_NAMES:
        return _DAY_NAMES[lowered]
    return _number(text, 0, 7, "day of the week")


def _days(field: str) -> frozenset[int]:
    if field == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in field.split(","):
        if "/" in part:
            raise CronUnsupported(f"day of the week step {part!r}")
        if "-" in part:
            first, last = (_day(p) for p in part.split("-", 1))
            if first > last:
                raise CronUnsupported(f"day range {part!r} runs backwards")
            days.update(_TO_WEEKDAY[d] for d in range(first, last + 1))
        else:
            days.add(_TO_WEEKDAY[_day(part)])
    return frozenset(days)


def _fields(expression: str, which: str) -> tuple[int, int, frozenset[int]]:
    fields = expression.split()
    if len(fields) != 5:
        raise CronUnsupported(f"{which} {expression!r} is not 5 fields (minute hour dom month dow)")
    minute, hour, dom, month, dow = fields
    if dom != "*" or month != "*":
        raise CronUnsupported(
            f"{which} {expression!r} names a day of the month or a month: a recurrence is weekly"
        )
    return _number(minute, 0, 59, "minute"), _number(hour, 0, 23, "hour"), _days(dow)


def window(start: str, end: str) -> Window:
    """The weekly recurrence of a KEDA cron window; CronUnsupported says why there is none."""
    start_minute, start_hour, days = _fields(start, "start")
    end_minute, end_hour, end_days = _fields(end, "end")
    if end_days not in (days, frozenset(range(7))):
        raise CronUnsupported(f"end {end!r} falls on other days than start {start!r}")
    begins = timedelta(hours=start_hour, minutes=start_minute)
    ends = timedelta(hours=end_hour, minutes=end_minute)
    if begins == ends:
        raise CronUnsupported("start and end are the same time (KEDA refuses it too)")
    duration = ends - begins if ends > begins else ends + timedelta(days=1) - begins
    return Window(days, start_hour, start_minute, duration)
