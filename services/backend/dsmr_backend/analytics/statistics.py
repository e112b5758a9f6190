"""Hour and day statistics of one meter, boundary to boundary (DESIGN.md).

A period's consumption is a register's value at the next period's start minus its value at the
period's start, each taken from the first reading at or after that boundary. Gas and water use their
own meter's timestamps the same way. Nothing falls between two periods, so hours add up to their day
and days to their month and year, on DST days too.

A day is ready only once local midnight has passed and a reading at or after it exists (and, while
the meter still reports gas, a gas value taken at or after it; after SUBMETER_GRACE the day goes
ahead without gas figures). Its result depends only on the readings up to those boundary readings,
so recomputing gives identical rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from dsmr_backend.analytics.model import DayStatistics, HourStatistics, ReadingPoint
from dsmr_backend.analytics.periods import (
    AMSTERDAM,
    DAY,
    HOUR,
    Bounds,
    day_bounds,
    days,
    hour_starts,
    local_day,
)
from dsmr_backend.analytics.prices import PriceTable, apply_costs
from dsmr_backend.analytics.series import Registers, Series, as_series

SUBMETER_GRACE = timedelta(hours=6)
"""How long after midnight a day waits for the gas (water) meter's first value at or after it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Quantities:
    """Consumption over one period: kWh per tariff and direction, gas and water m3 (None: no meter)."""

    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None = None
    water: Decimal | None = None

    def fields(self) -> dict[str, Any]:
        """The quantities by DSMR-reader field name (to fill a statistics row)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, slots=True)
class DayRows:
    """A ready day: its statistics (with costs) and its hours (hours without any reading are left out)."""

    day: DayStatistics
    hours: tuple[HourStatistics, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class NotReady:
    """Why a day has no rows yet; ``final`` when it never will (no reading in the whole day)."""

    day: date
    reason: str
    final: bool = False


def _register_change(registers: Registers, start: datetime, end: datetime) -> Decimal | None:
    begin, finish = registers.at_or_after(start), registers.at_or_after(end)
    return None if begin is None or finish is None else finish - begin


def quantities(series: Series, bounds: Bounds) -> Quantities | None:
    """Boundary-to-boundary consumption over [start, end); None without a reading at/after each."""
    first, last = series.first_at_or_after(bounds.start), series.first_at_or_after(bounds.end)
    if first is None or last is None:
        return None
    return Quantities(
        electricity1=last.delivered_1 - first.delivered_1,
        electricity2=last.delivered_2 - first.delivered_2,
        electricity1_returned=last.returned_1 - first.returned_1,
        electricity2_returned=last.returned_2 - first.returned_2,
        gas=_register_change(series.gas, *bounds),
        water=_register_change(series.water, *bounds),
    )


def day_not_ready(series: Series, day: date, *, now: datetime, tz: tzinfo = AMSTERDAM) -> NotReady | None:
    """Why ``day`` cannot be computed yet (or ever), or None when it is ready."""
    start, end = day_bounds(day, tz)
    if now < end:
        return NotReady(day, "the day is not over yet (local midnight has not passed)")
    if not series.any_in(start, end):
        following = series.first_at_or_after(end)
        return NotReady(day, "no reading in the whole day", final=following is not None)
    if series.first_at_or_after(end) is None:
        return NotReady(day, "waiting for the first reading at or after the next local midnight")
    newest = series.newest
    if newest is None:
        return NotReady(day, "no readings")
    reporting = {
        "gas": (series.gas, newest.gas is not None and newest.gas_timestamp is not None),
        "water": (series.water, newest.water is not None),
    }
    for name, (registers, still_reporting) in reporting.items():
        # A sub-meter that froze must not hold up every later day: give up on it after a grace time.
        if still_reporting and registers.at_or_after(end) is None and now < end + SUBMETER_GRACE:
            return NotReady(day, f"waiting for the {name} meter's first value at or after local midnight")
    return None


def hour_statistics(series: Series, day: date, tz: tzinfo = AMSTERDAM) -> tuple[HourStatistics, ...]:
    """The day's hours (23/24/25) holding a reading or a gas/water value, boundary to boundary."""
    rows = []
    for start in hour_starts(day, tz):
        end = start + HOUR
        if not (
            series.any_in(start, end) or series.gas.any_in(start, end) or series.water.any_in(start, end)
        ):
            continue
        amounts = quantities(series, Bounds(start, end))
        if amounts is not None:
            rows.append(HourStatistics(meter=series.meter, hour_start=start, **amounts.fields()))
    return tuple(rows)


def day_statistics(series: Series, day: date, tz: tzinfo = AMSTERDAM) -> DayStatistics | None:
    """The local day boundary to boundary, without costs; None without the boundary readings."""
    bounds = day_bounds(day, tz)
    amounts = quantities(series, bounds)
    first = series.first_at_or_after(bounds.start)
    if amounts is None or first is None:
        return None
    return DayStatistics(
        meter=series.meter,
        day=day,
        **amounts.fields(),
        electricity1_reading=first.delivered_1,
        electricity2_reading=first.delivered_2,
        electricity1_returned_reading=first.returned_1,
        electricity2_returned_reading=first.returned_2,
        gas_reading=series.gas.at_or_after(bounds.start) if amounts.gas is not None else None,
    )


def compute_day(
    points: Series | Iterable[ReadingPoint],
    day: date,
    *,
    now: datetime,
    prices: PriceTable | None = None,
    tz: tzinfo = AMSTERDAM,
) -> DayRows | NotReady:
    """A complete local day of one meter (statistics, costs, hours), or why it is not ready."""
    series = as_series(points)
    pending = day_not_ready(series, day, now=now, tz=tz)
    if pending is not None:
        return pending
    stats = day_statistics(series, day, tz)
    if stats is None:  # unreachable after the readiness check; kept for the type checker
        return NotReady(day, "no boundary readings")
    day_prices = prices.for_day(day) if prices is not None else None
    hours = hour_statistics(series, day, tz)
    # A sub-meter without a value after the day (given up on) has no hourly figures either.
    if stats.gas is None or stats.water is None:
        hours = tuple(
            dataclasses.replace(
                h,
                gas=h.gas if stats.gas is not None else None,
                water=h.water if stats.water is not None else None,
            )
            for h in hours
        )
    return DayRows(apply_costs(stats, day_prices), hours)


Stamp = Callable[[ReadingPoint], datetime | None]
"""When a reading's value was taken (None: the reading has no such value)."""


def _reading_time(point: ReadingPoint) -> datetime:
    return point.timestamp


def _gas_time(point: ReadingPoint) -> datetime | None:
    return point.gas_timestamp if point.gas is not None else None


def _water_time(point: ReadingPoint) -> datetime | None:
    return (point.water_timestamp or point.timestamp) if point.water is not None else None


class _FirstAtOrAfter:
    """Picks, from readings in time order, the first whose ``stamp`` reaches each boundary."""

    def __init__(self, boundaries: Sequence[datetime], stamp: Stamp) -> None:
        self.boundaries = boundaries
        self.stamp = stamp
        self.next = 0

    def picks(self, point: ReadingPoint) -> bool:
        """Whether ``point`` is the first to reach one or more boundaries not reached before."""
        at = self.stamp(point)
        if at is None or self.next >= len(self.boundaries) or at < self.boundaries[self.next]:
            return False
        while self.next < len(self.boundaries) and at >= self.boundaries[self.next]:
            self.next += 1
        return True


def day_points(points: Iterable[ReadingPoint], day: date, tz: tzinfo = AMSTERDAM) -> Iterator[ReadingPoint]:
    """The few readings of a day that ``compute_day`` looks at, from the day's readings in time order.

    Every lookup of a day's statistics is "the first reading (gas value, water value) at or after"
    an hour start or the day's end, so keeping those readings and the last one gives the same rows
    as the whole day: about 75 readings instead of 86,400 held in memory at once (~250 MB).
    """
    boundaries = (*hour_starts(day, tz), day_bounds(day, tz).end)
    pickers = [_FirstAtOrAfter(boundaries, stamp) for stamp in (_reading_time, _gas_time, _water_time)]
    last: ReadingPoint | None = None
    for point in points:
        last = point
        picked = [picker.picks(point) for picker in pickers]  # every picker sees every reading
        if any(picked):
            yield point
            last = None
    if last is not None:
        yield last


def compute_days(
    points: Series | Iterable[ReadingPoint],
    days: Iterable[date],
    *,
    now: datetime,
    prices: PriceTable | None = None,
    tz: tzinfo = AMSTERDAM,
) -> list[DayRows | NotReady]:
    """``compute_day`` for several days over one series (built once)."""
    series = as_series(points)
    return [compute_day(series, day, now=now, prices=prices, tz=tz) for day in days]


def days_to_compute(
    first_reading: datetime, last_done: date | None, *, now: datetime, tz: tzinfo = AMSTERDAM
) -> list[date]:
    """The days to try next, in order: after ``last_done`` (or from the first reading's day) until yesterday.

    Stop at the first ``NotReady`` that is not ``final``; a final one is skipped (no row, ever).
    """
    first = last_done + DAY if last_done is not None else local_day(first_reading, tz)
    return list(days(first, local_day(now, tz) - DAY))


def day_so_far(
    points: Series | Iterable[ReadingPoint],
    day: date,
    *,
    prices: PriceTable | None = None,
    tz: tzinfo = AMSTERDAM,
) -> DayStatistics | None:
    """Today's consumption up to the newest reading (for the live day-consumption topics)."""
    series = as_series(points)
    start = day_bounds(day, tz).start
    first, newest = series.first_at_or_after(start), series.newest
    if first is None or newest is None:
        return None
    gas_start, water_start = series.gas.at_or_after(start), series.water.at_or_after(start)
    partial = DayStatistics(
        meter=series.meter,
        day=day,
        electricity1=newest.delivered_1 - first.delivered_1,
        electricity2=newest.delivered_2 - first.delivered_2,
        electricity1_returned=newest.returned_1 - first.returned_1,
        electricity2_returned=newest.returned_2 - first.returned_2,
        gas=_latest_change(series.gas, gas_start),
        water=_latest_change(series.water, water_start),
        gas_reading=gas_start,
    )
    return apply_costs(partial, prices.for_day(day) if prices is not None else None)


def _latest_change(registers: Registers, start_value: Decimal | None) -> Decimal | None:
    return None if start_value is None else registers.values[-1] - start_value


def sum_days(days: Sequence[DayStatistics]) -> Quantities:
    """The quantities of several days added up (a month, a year): None gas/water counts as nothing."""
    return Quantities(
        electricity1=sum((d.electricity1 for d in days), Decimal(0)),
        electricity2=sum((d.electricity2 for d in days), Decimal(0)),
        electricity1_returned=sum((d.electricity1_returned for d in days), Decimal(0)),
        electricity2_returned=sum((d.electricity2_returned for d in days), Decimal(0)),
        gas=_sum_optional([d.gas for d in days]),
        water=_sum_optional([d.water for d in days]),
    )


def _sum_optional(values: Sequence[Decimal | None]) -> Decimal | None:
    known = [v for v in values if v is not None]
    return sum(known, Decimal(0)) if known else None


def sum_costs(days: Sequence[DayStatistics]) -> dict[str, Decimal | None]:
    """Each cost field added up over the days; None when any day lacks it (no guessing)."""
    fields = ("electricity1_cost", "electricity2_cost", "gas_cost", "fixed_cost", "total_cost")
    totals: dict[str, Decimal | None] = {}
    for name in fields:
        values = [getattr(d, name) for d in days if name != "gas_cost" or d.gas is not None]
        totals[name] = None if not days or None in values else sum(values, Decimal(0))
    return totals
