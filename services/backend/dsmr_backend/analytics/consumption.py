"""Consumption records from readings: electricity per minute, gas per change, quarter-hour peaks.

All functions take one meter's readings (any order) and return records for complete periods only,
so the service can call them on whatever the store returns and store the results idempotently by
their timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any

from dsmr_backend.analytics.model import (
    ElectricityConsumption,
    GasConsumption,
    QuarterHourPeak,
    ReadingPoint,
)
from dsmr_backend.analytics.periods import AMSTERDAM
from dsmr_backend.analytics.series import Series, as_series

MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)
MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
KW = Decimal("0.001")

# Averaged per minute: field -> decimals kept (kW 3 and V 1 as DSMR-reader; A 2, where it keeps whole A).
AVERAGED: dict[str, int] = {
    "currently_delivered": 3,
    "currently_returned": 3,
    **{
        f"phase_currently_{way}_{phase}": 3
        for way in ("delivered", "returned")
        for phase in ("l1", "l2", "l3")
    },
    **{f"phase_voltage_{phase}": 1 for phase in ("l1", "l2", "l3")},
    **{f"phase_power_current_{phase}": 2 for phase in ("l1", "l2", "l3")},
}


# (field, getter, quantum), built once: this runs for every field of every minute.
_AVERAGERS = [(name, attrgetter(name), Decimal(1).scaleb(-places)) for name, places in AVERAGED.items()]
_REGISTER_GETTERS = [
    (name, attrgetter(name)) for name in ("delivered_1", "returned_1", "delivered_2", "returned_2")
]


def _average(values: list[Decimal | None], quantum: Decimal) -> Decimal | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return (sum(present, Decimal(0)) / len(present)).quantize(quantum, rounding=ROUND_HALF_UP)


def _minute(group: Sequence[ReadingPoint], read_at: datetime) -> ElectricityConsumption:
    fields: dict[str, Any] = {name: max(map(getter, group)) for name, getter in _REGISTER_GETTERS}
    for name, getter, quantum in _AVERAGERS:
        fields[name] = _average(list(map(getter, group)), quantum)
    return ElectricityConsumption(meter=group[0].meter, read_at=read_at, **fields)


def electricity_per_minute(points: Series | Iterable[ReadingPoint]) -> list[ElectricityConsumption]:
    """One record per UTC minute with readings, stamped at the minute's end (DSMR-reader's grouping).

    A minute is complete, and only then returned, once a reading at or after its end exists.
    """
    series = as_series(points)
    newest = series.newest
    if newest is None:
        return []
    records = []
    for start, group in series.groups(MINUTE):
        end = start + MINUTE
        if newest.timestamp < end:
            break
        records.append(_minute(group, end))
    return records


def gas_changes(
    points: Series | Iterable[ReadingPoint], previous: GasConsumption | None = None
) -> list[GasConsumption]:
    """One record per new gas value (by the gas meter's own time) after ``previous``.

    ``currently_delivered`` is the change since the value before (``previous`` when given); the very
    first value ever has 0, as in DSMR-reader.
    """
    series = as_series(points)
    records = []
    last = previous
    for at, value in zip(series.gas.times, series.gas.values, strict=True):
        if last is not None and at <= last.read_at:
            continue
        change = Decimal(0) if last is None else value - last.delivered
        last = GasConsumption(meter=series.meter, read_at=at, delivered=value, currently_delivered=change)
        records.append(last)
    return records


def _average_kw(start: ReadingPoint, end: ReadingPoint) -> Decimal:
    energy = (end.delivered_1 + end.delivered_2) - (start.delivered_1 + start.delivered_2)
    microseconds = (end.timestamp - start.timestamp) // timedelta(microseconds=1)
    return (energy * MICROSECONDS_PER_HOUR / microseconds).quantize(KW, rounding=ROUND_HALF_UP)


def quarter_hour_peaks(points: Series | Iterable[ReadingPoint]) -> list[QuarterHourPeak]:
    """Average delivered power of each complete quarter hour with a reading in it.

    From the first reading at or after the quarter's start to the first at or after its end: the
    delivered kWh change (both tariffs) over the real duration between those two readings, in kW.
    """
    series = as_series(points)
    peaks = []
    for start, group in series.groups(QUARTER):
        first = group[0]
        last = series.first_at_or_after(start + QUARTER)
        if last is None:
            break
        peaks.append(QuarterHourPeak(series.meter, first.timestamp, last.timestamp, _average_kw(first, last)))
    return peaks


def month_peak(
    peaks: Iterable[QuarterHourPeak], year: int, month: int, tz: tzinfo = AMSTERDAM
) -> QuarterHourPeak | None:
    """The month's highest quarter-hour average (the earliest one on a tie), or None."""
    in_month = [
        p for p in peaks if (local := p.read_at_start.astimezone(tz)).year == year and local.month == month
    ]
    if not in_month:
        return None
    return min(in_month, key=lambda p: (-p.average_delivered, p.read_at_start))
