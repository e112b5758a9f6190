"""Local-time period boundaries (Europe/Amsterdam by default) as UTC instants, and "first at or after".

A period runs from its local start (midnight, the hour, the 1st of the month, 1 January) up to the
next period's start. Days have 23 or 25 hours on the DST switches; every boundary is converted to UTC
once, so all comparisons with telegram times are UTC against UTC.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Bounds(NamedTuple):
    """A period [start, end) in UTC."""

    start: datetime
    end: datetime


def local_start(day: date, tz: tzinfo = AMSTERDAM) -> datetime:
    """The UTC instant of local midnight at the start of ``day``."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def day_bounds(day: date, tz: tzinfo = AMSTERDAM) -> Bounds:
    """A local day in UTC: 23, 24 or 25 hours long."""
    return Bounds(local_start(day, tz), local_start(day + DAY, tz))


def month_bounds(year: int, month: int, tz: tzinfo = AMSTERDAM) -> Bounds:
    """A local calendar month in UTC."""
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return Bounds(local_start(date(year, month, 1), tz), local_start(following, tz))


def year_bounds(year: int, tz: tzinfo = AMSTERDAM) -> Bounds:
    """A local calendar year in UTC."""
    return Bounds(local_start(date(year, 1, 1), tz), local_start(date(year + 1, 1, 1), tz))


def hour_starts(day: date, tz: tzinfo = AMSTERDAM) -> tuple[datetime, ...]:
    """The UTC starts of the local day's hours: 23 on the spring switch, 25 in autumn."""
    start, end = day_bounds(day, tz)
    count = (end - start) // HOUR
    return tuple(start + n * HOUR for n in range(count))


def local_day(instant: datetime, tz: tzinfo = AMSTERDAM) -> date:
    """The local calendar day an instant falls on."""
    return instant.astimezone(tz).date()


def days(first: date, last: date) -> Iterator[date]:
    """Every day from ``first`` to ``last``, both included."""
    current = first
    while current <= last:
        yield current
        current += DAY


def first_index_at_or_after(times: Sequence[datetime], boundary: datetime) -> int | None:
    """Index of the first time at or after ``boundary`` in sorted ``times``, or None."""
    index = bisect_left(times, boundary)
    return index if index < len(times) else None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(instant: datetime, step: timedelta) -> datetime:
    """The instant rounded down to a multiple of ``step`` since the epoch (UTC)."""
    seconds = step // timedelta(seconds=1)
    # Fast path (called per reading): a UTC time and a step that divides an hour.
    if instant.tzinfo is UTC and step == timedelta(seconds=seconds) and 3600 % seconds == 0:
        into_hour = instant.minute * 60 + instant.second
        into_hour -= into_hour % seconds
        return instant.replace(minute=into_hour // 60, second=into_hour % 60, microsecond=0)
    return EPOCH + ((instant - EPOCH) // step) * step
