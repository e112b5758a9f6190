"""One meter's readings in time order, with its gas and water registers on their own timelines."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter

from dsmr_backend.analytics.errors import AnalyticsError
from dsmr_backend.analytics.model import ReadingPoint
from dsmr_backend.analytics.periods import first_index_at_or_after, floor_to

Extract = Callable[[ReadingPoint], tuple[datetime | None, Decimal | None]]


class Registers:
    """A sub-meter register (gas, water) by the sub-meter's own time, one value per time, in order."""

    __slots__ = ("times", "values")

    def __init__(self, points: Iterable[ReadingPoint], extract: Extract) -> None:
        self.times: list[datetime] = []
        self.values: list[Decimal] = []
        newest: datetime | None = None
        for at, value in map(extract, points):
            # A repeated or older time is the same (or a stale) value: the first one seen counts.
            if at is None or value is None or (newest is not None and at <= newest):
                continue
            newest = at
            self.times.append(at)
            self.values.append(value)

    def __bool__(self) -> bool:
        return bool(self.times)

    def at_or_after(self, boundary: datetime) -> Decimal | None:
        """The register's value at its first time at or after ``boundary``, or None."""
        index = first_index_at_or_after(self.times, boundary)
        return None if index is None else self.values[index]

    def any_in(self, start: datetime, end: datetime) -> bool:
        """Whether a value was taken in [start, end)."""
        index = first_index_at_or_after(self.times, start)
        return index is not None and self.times[index] < end


def _gas(point: ReadingPoint) -> tuple[datetime | None, Decimal | None]:
    return point.gas_timestamp, point.gas


def _water(point: ReadingPoint) -> tuple[datetime | None, Decimal | None]:
    return point.water_timestamp or point.timestamp, point.water


class Series:
    """One meter's readings sorted by telegram time, for boundary lookups."""

    __slots__ = ("gas", "meter", "points", "times", "water")

    def __init__(self, points: Iterable[ReadingPoint]) -> None:
        ordered = sorted(points, key=attrgetter("timestamp"))
        meters = {p.meter for p in ordered}
        if len(meters) > 1:
            raise AnalyticsError(f"a series holds one meter's readings, got {sorted(meters)}")
        if ordered and any(p.timestamp.tzinfo is None for p in (ordered[0], ordered[-1])):
            # Mixed naive/aware times fail in sorting already; all-naive ones would be read as local.
            raise AnalyticsError("reading timestamps must be timezone-aware (UTC)")
        self.meter = meters.pop() if meters else ""
        self.points = tuple(ordered)
        self.times = [p.timestamp for p in ordered]
        self.gas = Registers(ordered, _gas)
        self.water = Registers(ordered, _water)

    def __len__(self) -> int:
        return len(self.points)

    def first_at_or_after(self, boundary: datetime) -> ReadingPoint | None:
        """The first reading at or after ``boundary``, or None."""
        index = first_index_at_or_after(self.times, boundary)
        return None if index is None else self.points[index]

    def any_in(self, start: datetime, end: datetime) -> bool:
        """Whether a reading lies in [start, end)."""
        point = self.first_at_or_after(start)
        return point is not None and point.timestamp < end

    def groups(self, step: timedelta) -> Iterator[tuple[datetime, tuple[ReadingPoint, ...]]]:
        """The readings in consecutive step-aligned periods (minutes, quarters), with each start."""
        index, count = 0, len(self.times)
        while index < count:
            start = floor_to(self.times[index], step)
            stop = bisect_left(self.times, start + step, index)
            yield start, self.points[index:stop]
            index = stop

    @property
    def newest(self) -> ReadingPoint | None:
        """The latest reading, or None for an empty series."""
        return self.points[-1] if self.points else None


def as_series(points: Series | Iterable[ReadingPoint]) -> Series:
    """A Series, built from the points unless it already is one."""
    return points if isinstance(points, Series) else Series(points)
