"""The statistics task: turns stored readings into consumption, hour/day statistics and costs.

It runs on the backend loop (and to the end in ``dsmr-backend import``). Where to go on is read
from the store each round (the newest stored minute, peak, gas record and day per meter), never
from memory, so a backend that was down catches up by itself and replicas share the work: the
unique keys and insert-if-absent decide what is new. A day is written with its hours in one
transaction (``StatisticsStore.save_day``); with a staging factory, the post_save envelopes of
each transaction's new records are staged in it (the outbox) and published after its commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from dsmr_backend.analytics import (
    DayRows,
    DayStatistics,
    ElectricityConsumption,
    GasConsumption,
    HourStatistics,
    NotReady,
    PriceTable,
    QuarterHourPeak,
    ReadingPoint,
    compute_day,
    days_to_compute,
    electricity_per_minute,
    gas_changes,
    quarter_hour_peaks,
)
from dsmr_backend.analytics.consumption import MINUTE, QUARTER
from dsmr_backend.analytics.periods import DAY, HOUR, day_bounds, days, floor_to, local_day
from dsmr_backend.analytics.retention import readings_to_delete
from dsmr_backend.analytics.series import Series
from dsmr_backend.analytics.statistics import day_not_ready, day_points, day_so_far
from dsmr_backend.outbox import Staging
from dsmr_backend.period_outputs import LiveTotals
from dsmr_backend.storage.statistics_store import StatisticsStore

log = logging.getLogger(__name__)

RETENTION_EVERY = 3600.0
"""Seconds between retention runs (the first runs at start)."""
RETENTION_DAYS_PER_RUN = 31
"""Most days thinned per run and meter, so a first run on a big database stays short."""
CHUNK = 5_000
"""Most readings one consumption step loads (a catch-up goes chunk by chunk)."""

Clock = Callable[[], datetime]


@dataclass(slots=True)
class Saved:
    """What one round stored for the first time, for one meter (post_save, outputs)."""

    meter: str
    minutes: list[ElectricityConsumption] = field(default_factory=list)
    gas: list[GasConsumption] = field(default_factory=list)
    peaks: list[QuarterHourPeak] = field(default_factory=list)
    hours: list[HourStatistics] = field(default_factory=list)
    days: list[DayStatistics] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.minutes or self.gas or self.peaks or self.hours or self.days)


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class StatisticsTask:
    """One round per call: for every meter, a consumption chunk and the days that are ready."""

    def __init__(
        self,
        store: StatisticsStore,
        *,
        prices: PriceTable | None = None,
        chunk: int = CHUNK,
        clock: Clock = utc_now,
        retention_days: int | None = None,
        staging: Callable[[], Staging] | None = None,
    ) -> None:
        self.store = store
        self.staging = staging  # post_save through the outbox (None: no post_save, as in import)
        self.prices = prices
        self.chunk = chunk
        self.clock = clock
        self._no_day: dict[str, set[date]] = {}  # days known to have no reading at all (final)
        self.retention_days = retention_days
        self._retention_due = 0.0

    def run(self, budget_s: float | None = None) -> tuple[list[Saved], bool]:
        """Work until done or ``budget_s`` is used; return what was new and whether work remains."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        saved: dict[str, Saved] = {}
        while True:
            more = self.round(saved)
            if not more or (deadline is not None and time.monotonic() >= deadline):
                return [s for s in saved.values() if s], more

    def round(self, saved: dict[str, Saved]) -> bool:
        """One consumption chunk and up to a day per meter; True when any meter has more to do."""
        more = False
        now = self.clock()
        for meter, meter_id in self.store.meters().items():
            into = saved.setdefault(meter, Saved(meter))
            more |= self.consumption(meter, meter_id, into)
            more |= self.next_day(meter, meter_id, now, into)
        return more

    # -- consumption ----------------------------------------------------------------------------

    def consumption(self, meter: str, meter_id: int, into: Saved) -> bool:
        """Per-minute electricity, gas changes and quarter-hour peaks of the next chunk."""
        last_minute = self.store.last_minute(meter_id)
        newest = self.store.newest_reading_time(meter_id)
        if newest is None or (last_minute is not None and newest < last_minute + MINUTE):
            return False  # no minute completed since the last round (live: runs once a minute)
        peak = self.store.last_peak_start(meter_id)
        next_quarter = None if peak is None else floor_to(peak, QUARTER) + QUARTER
        # From the earlier cursor (records already stored are filtered out or skipped by their key);
        # while either kind has no record yet, from the first reading.
        start = None if last_minute is None or next_quarter is None else min(last_minute, next_quarter)
        points = self.store.points(meter, meter_id, start, limit=self.chunk)
        if not points:
            return False
        series = Series(points)
        minutes = [
            m for m in electricity_per_minute(series) if last_minute is None or m.read_at > last_minute
        ]
        peaks = [p for p in quarter_hour_peaks(series) if peak is None or p.read_at_start > peak]
        gas = gas_changes(series, previous=self.store.last_gas(meter, meter_id))
        with self._announcing() as staging:
            new = self.store.save_consumption(meter_id, minutes, gas, peaks, then=staging)
        into.minutes += new[0]
        into.gas += new[1]
        into.peaks += new[2]
        return len(points) >= self.chunk and bool(minutes or peaks or gas)

    # -- days -----------------------------------------------------------------------------------

    def next_day(self, meter: str, meter_id: int, now: datetime, into: Saved) -> bool:
        """Compute the next ready day, if any; True when more days may be ready."""
        first = self.store.first_reading_time(meter_id)
        if first is None:
            return False
        skipped = self._no_day.setdefault(meter, set())
        for day in days_to_compute(first, self.store.last_day(meter_id), now=now):
            if day in skipped:
                continue
            result = self.compute(meter, meter_id, day, now)
            if isinstance(result, DayRows):
                self.save(meter_id, result, into)
                return True
            if not result.final:
                return False
            skipped.add(day)
        return False

    def compute(self, meter: str, meter_id: int, day: date, now: datetime) -> DayRows | NotReady:
        """A day's rows from its readings and boundary readings, after a cheap readiness probe."""
        start, end = day_bounds(day)
        boundary = self._boundary_points(meter, meter_id, end)
        inside = self.store.first_point(meter, meter_id, start)
        probe = [p for p in (inside, *boundary) if p is not None]
        pending = day_not_ready(Series(probe), day, now=now)
        if pending is not None:
            return pending
        # Only the readings the day's figures depend on: a whole day as points is ~250 MB.
        inside_day = day_points(self.store.day_readings(meter, meter_id, start, end), day)
        return compute_day([*inside_day, *boundary], day, now=now, prices=self.prices)

    def _boundary_points(self, meter: str, meter_id: int, end: datetime) -> list[ReadingPoint]:
        """The first readings at/after ``end`` (electricity, gas, water) and the newest one."""
        found = [
            self.store.first_point(meter, meter_id, end),
            self.store.first_point(meter, meter_id, end, sub_meter="extra_device_timestamp"),
            self.store.first_point(meter, meter_id, end, sub_meter="water_timestamp"),
            self.store.newest_point(meter, meter_id),
        ]
        unique = {p.timestamp: p for p in found if p is not None}
        return [unique[t] for t in sorted(unique)]

    def save(self, meter_id: int, rows: DayRows, into: Saved) -> None:
        """Write one day (and its hours) in one transaction."""
        with self._announcing() as staging:
            day, hours = self.store.save_day(meter_id, rows, then=staging)
        into.hours += hours
        if day is not None:
            into.days.append(day)
            log.debug("day statistics of %s for %s stored", rows.day.meter, rows.day.day)

    @contextmanager
    def _announcing(self) -> Iterator[Staging | None]:
        """A staging for one transaction; what it staged is published once the block committed."""
        staging = self.staging() if self.staging is not None else None
        yield staging
        if staging is not None:
            staging.publish()

    # -- live totals ------------------------------------------------------------------------------

    def live(self, meter: str, meter_id: int) -> LiveTotals:
        """Today so far (the local day of the newest reading), this month and year, newest gas and peak."""
        store = self.store
        newest = store.newest_point(meter, meter_id)
        gas, peak = store.last_gas(meter, meter_id), store.last_peak(meter, meter_id)
        if newest is None:
            return LiveTotals(meter, gas=gas, peak=peak)
        day = local_day(newest.timestamp)
        start = day_bounds(day).start
        firsts = [
            store.first_point(meter, meter_id, start),
            store.first_point(meter, meter_id, start, sub_meter="extra_device_timestamp"),
            store.first_point(meter, meter_id, start, sub_meter="water_timestamp"),
        ]
        points = {p.timestamp: p for p in (*firsts, newest) if p is not None}
        today = day_so_far(points.values(), day, prices=self.prices)
        prices = self.prices.for_day(day) if self.prices is not None else None
        month, year = self._periods(meter, meter_id, day, today)
        return LiveTotals(meter, today, prices, month, year, gas, peak)

    def _periods(
        self, meter: str, meter_id: int, day: date, today: DayStatistics | None
    ) -> tuple[list[DayStatistics] | None, list[DayStatistics] | None]:
        """The month's and the year's days so far; None while yesterday is not computed yet."""
        first = self.store.first_reading_time(meter_id)
        yesterday = day - DAY
        started_today = first is not None and local_day(first) >= day
        if not started_today and not self.store.days(meter, meter_id, yesterday, yesterday):
            return None, None  # as DSMR-reader: no period totals that would lack yesterday
        year = self.store.days(meter, meter_id, day.replace(month=1, day=1), yesterday)
        current = [today] if today is not None else []
        month = [d for d in year if d.day >= day.replace(day=1)]
        return month + current, year + current

    # -- retention --------------------------------------------------------------------------------

    def retention(self, *, force: bool = False) -> int:
        """Thin old readings (DSMR_BACKEND_RETENTION_DAYS), at most once an hour; return how many went."""
        if self.retention_days is None or (not force and time.monotonic() < self._retention_due):
            return 0
        self._retention_due = time.monotonic() + RETENTION_EVERY
        now = self.clock()
        deleted = sum(self.thin(meter, meter_id, now) for meter, meter_id in self.store.meters().items())
        if deleted:
            log.info("retention: thinned %d reading(s) older than %d days", deleted, self.retention_days)
        return deleted

    def thin(self, meter: str, meter_id: int, now: datetime) -> int:
        """Thin one meter's old readings, only where consumption and statistics are computed."""
        keep = self.retention_days
        last_day, last_minute = self.store.last_day(meter_id), self.store.last_minute(meter_id)
        first = self.store.first_reading_time(meter_id)
        if keep is None or last_day is None or last_minute is None or first is None:
            return 0
        limit = floor_to(min(now - timedelta(days=keep), day_bounds(last_day).end, last_minute), HOUR)
        deleted, thinned_days = 0, 0
        for day in days(local_day(first), local_day(limit)):
            start, end = day_bounds(day)
            # Times, gas and water are all retention looks at: the narrow, streamed day query.
            points = self.store.day_readings(meter, meter_id, start, min(end, limit))
            doomed = readings_to_delete(points, now=limit + timedelta(days=keep), keep_days=keep)
            if doomed:
                deleted += self.store.delete_readings(meter_id, doomed)
                thinned_days += 1
            if thinned_days >= RETENTION_DAYS_PER_RUN:
                break
        return deleted
