"""Local period boundaries in UTC, "first at or after", and building points from stored columns."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dsmr_backend.analytics.errors import AnalyticsError
from dsmr_backend.analytics.model import ReadingPoint, as_record, point_from_values
from dsmr_backend.analytics.periods import (
    day_bounds,
    first_index_at_or_after,
    hour_starts,
    local_day,
    month_bounds,
    year_bounds,
)
from dsmr_backend.analytics.series import Series


@pytest.mark.parametrize(
    ("day", "hours", "start_utc"),
    [
        (date(2025, 3, 30), 23, datetime(2025, 3, 29, 23, tzinfo=UTC)),
        (date(2025, 6, 1), 24, datetime(2025, 5, 31, 22, tzinfo=UTC)),
        (date(2025, 10, 26), 25, datetime(2025, 10, 25, 22, tzinfo=UTC)),
        (date(2025, 12, 1), 24, datetime(2025, 11, 30, 23, tzinfo=UTC)),
    ],
)
def test_days_are_local_and_have_23_24_or_25_hours(day: date, hours: int, start_utc: datetime) -> None:
    start, end = day_bounds(day)
    assert start == start_utc
    assert end - start == timedelta(hours=hours)
    assert len(hour_starts(day)) == hours
    assert local_day(start) == day and local_day(end - timedelta(microseconds=1)) == day


def test_months_and_years_run_between_local_midnights() -> None:
    assert month_bounds(2025, 3) == (
        datetime(2025, 2, 28, 23, tzinfo=UTC),
        datetime(2025, 3, 31, 22, tzinfo=UTC),
    )
    assert month_bounds(2025, 12).end == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert year_bounds(2025) == (
        datetime(2024, 12, 31, 23, tzinfo=UTC),
        datetime(2025, 12, 31, 23, tzinfo=UTC),
    )


def test_first_at_or_after_includes_the_boundary_itself() -> None:
    times = [datetime(2025, 1, 1, 0, m, tzinfo=UTC) for m in (0, 5, 10)]
    assert first_index_at_or_after(times, times[1]) == 1
    assert first_index_at_or_after(times, times[1] + timedelta(seconds=1)) == 2
    assert first_index_at_or_after(times, times[2] + timedelta(seconds=1)) is None


def test_points_come_from_stored_reading_columns() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    columns = {
        "electricity_delivered_1": Decimal("1.000"),
        "electricity_delivered_2": Decimal("2.000"),
        "electricity_returned_1": Decimal("0.100"),
        "electricity_returned_2": Decimal("0.200"),
        "electricity_currently_delivered": Decimal("0.500"),
        "extra_device_delivered": Decimal("123.456"),
        "extra_device_timestamp": at,
        "phase_voltage_l1": Decimal("230.0"),
        "dsmr_version": "50",  # not needed by the analytics: ignored
        "water_delivered": None,
    }
    made = point_from_values("meter-1", at, columns)
    assert made == ReadingPoint(
        "meter-1",
        at,
        Decimal("1.000"),
        Decimal("2.000"),
        Decimal("0.100"),
        Decimal("0.200"),
        currently_delivered=Decimal("0.500"),
        phase_voltage_l1=Decimal("230.0"),
        gas=Decimal("123.456"),
        gas_timestamp=at,
    )
    assert as_record(made)["gas"] == Decimal("123.456")
    assert point_from_values("meter-1", at, {"electricity_delivered_1": Decimal(1)}) is None


def test_a_series_holds_one_meter() -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    zero = Decimal(0)
    with pytest.raises(AnalyticsError, match="one meter"):
        Series([ReadingPoint("a", at, zero, zero, zero, zero), ReadingPoint("b", at, zero, zero, zero, zero)])
    with pytest.raises(AnalyticsError, match="timezone-aware"):
        Series([ReadingPoint("a", at.replace(tzinfo=None), zero, zero, zero, zero)])
