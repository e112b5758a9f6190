"""Per-minute electricity, gas per change and quarter-hour peaks against the generator's truth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from dsmr_backend.analytics.consumption import (
    electricity_per_minute,
    gas_changes,
    month_peak,
    quarter_hour_peaks,
)
from dsmr_backend.analytics.model import QuarterHourPeak, ReadingPoint
from tests.backend.analytics.conftest import Run
from tests.backend.analytics.expected import kwh
from tests.backend.analytics.generator import BASE_WH, local_midnight

MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)
T0 = datetime(2025, 6, 3, 8, 0, tzinfo=UTC)


def point(
    at: datetime, d1: str, *, kw: str | None = None, d2: str = "0", voltage: str | None = None
) -> ReadingPoint:
    return ReadingPoint(
        "m",
        at,
        Decimal(d1),
        Decimal(d2),
        Decimal(0),
        Decimal(0),
        currently_delivered=None if kw is None else Decimal(kw),
        phase_voltage_l1=None if voltage is None else Decimal(voltage),
    )


def test_a_minute_keeps_register_maxima_and_power_averages_stamped_at_its_end() -> None:
    points = [
        point(T0 + timedelta(seconds=1), "1.000", kw="0.100", voltage="230.0"),
        point(T0 + timedelta(seconds=21), "1.002", kw="0.200", voltage="231.0"),
        point(T0 + timedelta(seconds=41), "1.005", kw="0.301"),
        point(T0 + MINUTE + timedelta(seconds=1), "1.010", kw="0.500"),
    ]
    records = electricity_per_minute(reversed(points))
    assert len(records) == 1  # the second minute is not complete yet (no reading after it)
    minute = records[0]
    assert minute.read_at == T0 + MINUTE
    assert minute.delivered_1 == Decimal("1.005")
    assert minute.currently_delivered == Decimal("0.200")  # (0.1 + 0.2 + 0.301) / 3 = 0.2003...
    assert minute.phase_voltage_l1 == Decimal("230.5")  # the average of the values present
    assert minute.currently_returned is None


def test_minutes_follow_the_truth(week: Run) -> None:
    _, truth, points = week
    day = local_midnight(date(2025, 6, 3))
    window = [p for p in points if day <= p.timestamp < day + timedelta(hours=2, seconds=30)]
    records = electricity_per_minute(window)
    assert [r.read_at for r in records] == [day + (n + 1) * MINUTE for n in range(120)]
    for record in records:
        # The last telegram of a minute (at :57) shows the minutes ended before it began.
        start = record.read_at - MINUTE
        shown = truth.wh_between(truth.origin, start)
        assert record.delivered_1 == kwh(BASE_WH[0] + shown["d1"])
        assert record.returned_2 == kwh(BASE_WH[3] + shown["r2"])
        minute_index = (start - truth.origin) // MINUTE
        assert record.currently_delivered == kwh(truth.delivered[minute_index] * 60)


def test_gas_changes_follow_the_gas_meter_and_continue_after_a_previous_record(week: Run) -> None:
    _, truth, points = week
    start = local_midnight(date(2025, 6, 4))
    window = [p for p in points if start <= p.timestamp < start + timedelta(hours=3)]
    records = gas_changes(window)
    assert [r.read_at for r in records] == [
        start - timedelta(minutes=5) + n * timedelta(minutes=5) for n in range(37)
    ]
    assert records[0].currently_delivered == 0  # nothing known before it
    for record in records[1:]:
        slot = record.read_at - timedelta(minutes=5)
        assert record.currently_delivered == kwh(truth.gas_l_between(slot, record.read_at))
    # Fed in two halves, continuing from the last record, the result is the same.
    half = len(window) // 2
    first = gas_changes(window[:half])
    assert first + gas_changes(window[half:], previous=first[-1]) == records


def test_hourly_gas_of_dsmr4_is_one_record_per_hour(autumn: Run) -> None:
    _, truth, points = autumn
    day = local_midnight(date(2025, 10, 26))
    records = gas_changes([p for p in points if day <= p.timestamp < day + timedelta(hours=6)])
    assert [r.read_at for r in records] == [
        day - timedelta(hours=1) + n * timedelta(hours=1) for n in range(7)
    ]
    assert records[3].currently_delivered == kwh(
        truth.gas_l_between(day + timedelta(hours=1), day + timedelta(hours=2))
    )


def test_quarter_hour_peaks_are_kwh_over_the_real_duration() -> None:
    points = [
        point(T0 + timedelta(seconds=5), "10.000", d2="5.000"),
        point(T0 + timedelta(minutes=7), "10.100", d2="5.000"),
        point(T0 + QUARTER + timedelta(seconds=9), "10.200", d2="5.100"),  # 904 s after the first
        point(T0 + 2 * QUARTER + timedelta(seconds=1), "10.250", d2="5.100"),
    ]
    peaks = quarter_hour_peaks(points)
    assert len(peaks) == 2  # the last quarter has no reading after its end yet
    assert peaks[0].read_at_start == T0 + timedelta(seconds=5)
    assert peaks[0].read_at_end == T0 + QUARTER + timedelta(seconds=9)
    assert peaks[0].duration_s == 904
    assert peaks[0].average_delivered == Decimal("1.195")  # 0.3 kWh * 3600 / 904 s = 1.19469...
    assert peaks[1].average_delivered == Decimal("0.202")  # 0.05 kWh over 892 s = 0.20179...


def test_quarter_peaks_of_a_day_match_the_truth_and_the_month_peak_is_the_highest(spring: Run) -> None:
    _, truth, points = spring
    day = local_midnight(date(2025, 3, 30))
    peaks = quarter_hour_peaks([p for p in points if day <= p.timestamp <= day + timedelta(hours=23)])
    assert len(peaks) == 23 * 4  # 23 hours on the spring switch
    for peak in peaks:
        wh = truth.wh_between(peak.read_at_start, peak.read_at_start + QUARTER)
        assert peak.average_delivered == kwh((wh["d1"] + wh["d2"]) * 4)
    best = month_peak(peaks, 2025, 3)
    assert best is not None and best.average_delivered == max(p.average_delivered for p in peaks)
    assert month_peak(peaks, 2025, 4) is None


def test_month_peak_takes_the_local_month_and_the_earliest_of_equal_peaks() -> None:
    # 31 May 22:30 UTC is 1 June 00:30 in Amsterdam.
    june_first = QuarterHourPeak(
        "m", datetime(2025, 5, 31, 22, 30, tzinfo=UTC), datetime(2025, 5, 31, 22, 45, tzinfo=UTC), Decimal(3)
    )
    june_later = QuarterHourPeak(
        "m", datetime(2025, 6, 9, 10, tzinfo=UTC), datetime(2025, 6, 9, 10, 15, tzinfo=UTC), Decimal(3)
    )
    may = QuarterHourPeak(
        "m", datetime(2025, 5, 20, 10, tzinfo=UTC), datetime(2025, 5, 20, 10, 15, tzinfo=UTC), Decimal(9)
    )
    assert month_peak([june_later, may, june_first], 2025, 6) == june_first
    assert month_peak([june_later, may, june_first], 2025, 5) == may
