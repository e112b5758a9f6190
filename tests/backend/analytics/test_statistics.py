"""Hour and day statistics and costs against the generator's ground truth: exact to the Wh and the cent."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dsmr_backend.analytics.model import DayStatistics, HourStatistics, ReadingPoint
from dsmr_backend.analytics.periods import month_bounds, year_bounds
from dsmr_backend.analytics.prices import PriceTable
from dsmr_backend.analytics.series import Series
from dsmr_backend.analytics.statistics import (
    DayRows,
    NotReady,
    compute_day,
    compute_days,
    day_points,
    day_so_far,
    days_to_compute,
    quantities,
    sum_costs,
    sum_days,
)
from tests.backend.analytics.conftest import LATER, Run
from tests.backend.analytics.expected import contract_for, day_costs, kwh
from tests.backend.analytics.generator import AMS, Scenario, Truth, generate, local_midnight

ONE_DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def the_days(scenario: Scenario) -> list[date]:
    count = (scenario.last_day - scenario.first_day).days + 1
    return [scenario.first_day + n * ONE_DAY for n in range(count)]


def ready(result: DayRows | NotReady) -> DayRows:
    assert isinstance(result, DayRows), result
    return result


def assert_energy(row: DayStatistics | HourStatistics, wh: dict[str, int]) -> None:
    assert row.electricity1 == kwh(wh["d1"])
    assert row.electricity2 == kwh(wh["d2"])
    assert row.electricity1_returned == kwh(wh["r1"])
    assert row.electricity2_returned == kwh(wh["r2"])


def check_day_against_truth(truth: Truth, rows: DayRows, day: date, prices_known: bool) -> None:
    start, end = local_midnight(day), local_midnight(day + ONE_DAY)
    wh = truth.wh_between(start, end)
    gas_l = truth.gas_l_between(start, end)
    assert_energy(rows.day, wh)
    assert rows.day.gas == kwh(gas_l)
    expected_costs = day_costs(wh, gas_l, contract_for(day) if prices_known else None)
    for name, value in expected_costs.items():
        assert getattr(rows.day, name) == value, (day, name)
    hour_count = round((end - start) / HOUR)
    assert [h.hour_start for h in rows.hours] == [start + n * HOUR for n in range(hour_count)]
    for hour in rows.hours:
        assert_energy(hour, truth.wh_between(hour.hour_start, hour.hour_start + HOUR))
        assert hour.gas == kwh(truth.gas_l_between(hour.hour_start, hour.hour_start + HOUR))


@pytest.mark.parametrize("run_name", ["week", "spring", "autumn"])
def test_every_day_and_hour_matches_the_truth_to_the_wh_and_the_cent(
    run_name: str, request: pytest.FixtureRequest, prices: PriceTable
) -> None:
    scenario, truth, points = request.getfixturevalue(run_name)
    results = compute_days(points, the_days(scenario), now=LATER, prices=prices)
    for day, result in zip(the_days(scenario), results, strict=True):
        check_day_against_truth(truth, ready(result), day, prices_known=True)


def test_dst_days_have_23_and_25_hours(spring: Run, autumn: Run, prices: PriceTable) -> None:
    short = ready(compute_day(spring[2], date(2025, 3, 30), now=LATER, prices=prices))
    long = ready(compute_day(autumn[2], date(2025, 10, 26), now=LATER, prices=prices))
    assert len(short.hours) == 23
    assert len(long.hours) == 25
    local_hours = [h.hour_start.astimezone(AMS).hour for h in long.hours]
    assert local_hours.count(2) == 2  # 02:00 twice: once in summer time, once in winter time
    assert 2 not in [h.hour_start.astimezone(AMS).hour for h in short.hours]
    for rows in (short, long):
        assert sum((h.electricity1 + h.electricity2 for h in rows.hours), Decimal(0)) == (
            rows.day.electricity_merged
        )


def test_days_of_a_year_add_up_to_the_year_and_months(year: Run, prices: PriceTable) -> None:
    scenario, truth, points = year
    series = Series(points)
    days_2025 = [d for d in the_days(scenario) if d.year == 2025]
    stats = [ready(r).day for r in compute_days(series, days_2025, now=LATER, prices=prices)]
    assert len(stats) == 365
    whole_year = quantities(series, year_bounds(2025))
    assert whole_year is not None
    assert sum_days(stats) == whole_year
    start, end = local_midnight(date(2025, 1, 1)), local_midnight(date(2026, 1, 1))
    assert whole_year.electricity1 == kwh(truth.wh_between(start, end)["d1"])
    assert whole_year.gas == kwh(truth.gas_l_between(start, end))
    for month in range(1, 13):
        in_month = [s for s in stats if s.day.month == month]
        assert sum_days(in_month) == quantities(series, month_bounds(2025, month))
    # Each day's costs, including both price contracts, to the cent; and the year's sum of them.
    for day_stats in stats:
        start, end = local_midnight(day_stats.day), local_midnight(day_stats.day + ONE_DAY)
        wanted = day_costs(
            truth.wh_between(start, end), truth.gas_l_between(start, end), contract_for(day_stats.day)
        )
        assert {name: getattr(day_stats, name) for name in wanted} == wanted, day_stats.day
    assert sum_costs(stats)["total_cost"] == sum((s.total_cost or Decimal(0) for s in stats), Decimal(0))


def test_a_day_without_a_price_has_no_cost(year: Run, prices: PriceTable) -> None:
    rows = ready(compute_day(year[2], date(2024, 12, 31), now=LATER, prices=prices))
    assert rows.day.electricity_merged > 0
    costs = [rows.day.electricity1_cost, rows.day.electricity2_cost, rows.day.gas_cost]
    assert [*costs, rows.day.fixed_cost, rows.day.total_cost] == [None] * 5
    unpriced = ready(compute_day(year[2], date(2025, 1, 1), now=LATER, prices=None)).day
    assert unpriced.total_cost is None
    assert sum_costs([rows.day, unpriced])["total_cost"] is None


def test_price_contract_switches_mid_year(year: Run, prices: PriceTable) -> None:
    june, july = (
        ready(compute_day(year[2], d, now=LATER, prices=prices)).day
        for d in (date(2025, 6, 30), date(2025, 7, 1))
    )
    assert june.fixed_cost == Decimal("0.57")  # 0.565 rounds half up (half-even would give 0.56)
    assert july.fixed_cost == Decimal("0.63")  # 0.625


def test_recomputing_gives_identical_rows(week: Run, prices: PriceTable) -> None:
    scenario, _, points = week
    days = the_days(scenario)
    first = compute_days(points, days, now=LATER, prices=prices)
    shuffled = list(points)
    random.Random(5).shuffle(shuffled)
    assert compute_days(shuffled, days, now=LATER, prices=prices) == first
    # Only the readings up to the boundary readings count: a cut just after them changes nothing.
    cut = local_midnight(scenario.last_day + ONE_DAY) + timedelta(minutes=2)
    assert compute_days([p for p in points if p.timestamp <= cut], days, now=LATER, prices=prices) == first


def test_gaps_inside_a_day_and_across_midnight_still_split_at_the_boundaries(prices: PriceTable) -> None:
    inside = (
        local_midnight(date(2025, 6, 3)) + timedelta(hours=10),
        local_midnight(date(2025, 6, 3)) + timedelta(hours=14),
    )
    midnight = local_midnight(date(2025, 6, 5))
    across = (midnight - timedelta(minutes=30), midnight + timedelta(minutes=45))
    whole = (
        local_midnight(date(2025, 6, 6)) - timedelta(minutes=5),
        local_midnight(date(2025, 6, 7)) + timedelta(minutes=5),
    )
    scenario = Scenario(
        date(2025, 6, 2), date(2025, 6, 8), interval_s=30, offset_s=11, gaps=(inside, across, whole), seed=21
    )
    truth, points = generate(scenario)
    series = Series(points)

    def first_time_at_or_after(boundary: datetime) -> datetime:
        return min(p.timestamp for p in points if p.timestamp >= boundary)

    def expected_wh(day: date) -> dict[str, int]:
        begin = truth.wh_registers_at(first_time_at_or_after(local_midnight(day)))
        finish = truth.wh_registers_at(first_time_at_or_after(local_midnight(day + ONE_DAY)))
        return {name: finish[name] - begin[name] for name in finish}

    results = {d: compute_day(series, d, now=LATER, prices=prices) for d in the_days(scenario)}
    # A gap inside a day: the day is still exact, the hours without telegrams are left out.
    june3 = ready(results[date(2025, 6, 3)])
    assert_energy(
        june3.day, truth.wh_between(local_midnight(date(2025, 6, 3)), local_midnight(date(2025, 6, 4)))
    )
    # 10:00-14:00 has no telegram; 13:00 keeps a row for the gas value taken at 13:55 (seen at 14:00).
    assert {h.hour_start.astimezone(AMS).hour for h in june3.hours} == set(range(24)) - {10, 11, 12}
    # Across midnight: the day before runs to the first telegram after the gap, the next day from it.
    for day in (date(2025, 6, 4), date(2025, 6, 5)):
        assert_energy(ready(results[day]).day, expected_wh(day))
    # A day without any telegram gets no rows; its neighbours still add up to the truth.
    empty = results[date(2025, 6, 6)]
    assert isinstance(empty, NotReady) and empty.final and "no reading" in empty.reason
    together = sum_days([ready(results[d]).day for d in the_days(scenario) if d != date(2025, 6, 6)])
    span = truth.wh_between(local_midnight(scenario.first_day), local_midnight(scenario.last_day + ONE_DAY))
    assert together.electricity1 == kwh(span["d1"]) and together.electricity2_returned == kwh(span["r2"])
    assert together.gas == kwh(
        truth.gas_l_between(local_midnight(scenario.first_day), local_midnight(scenario.last_day + ONE_DAY))
    )


def test_a_day_is_not_ready_before_midnight_and_its_boundary_readings(week: Run) -> None:
    _, _, points = week
    day = date(2025, 6, 4)
    end = local_midnight(day + ONE_DAY)
    early = compute_day(points, day, now=end - timedelta(seconds=1))
    assert isinstance(early, NotReady) and "not over" in early.reason and not early.final
    before_end = [p for p in points if p.timestamp < end]
    waiting = compute_day(before_end, day, now=LATER)
    assert isinstance(waiting, NotReady) and "first reading at or after" in waiting.reason
    # A telegram after midnight whose gas value is still from before midnight: wait for the gas meter.
    no_gas_yet = before_end + [p for p in points if end <= p.timestamp < end + timedelta(seconds=20)]
    gas_wait = compute_day(no_gas_yet, day, now=end + timedelta(hours=1))
    assert isinstance(gas_wait, NotReady) and "gas" in gas_wait.reason
    # A gas meter that never reports again does not hold the day up for ever: no gas figures then.
    given_up = ready(compute_day(no_gas_yet, day, now=end + timedelta(hours=6)))
    assert given_up.day.gas is None and given_up.day.electricity_merged > 0
    assert all(h.gas is None for h in given_up.hours)
    with_gas = [p for p in points if p.timestamp < end + timedelta(seconds=60)]
    assert isinstance(compute_day(with_gas, day, now=LATER), DayRows)


def test_a_meter_without_gas_has_no_gas_and_no_gas_cost(week: Run, prices: PriceTable) -> None:
    start, end = local_midnight(date(2025, 6, 3)), local_midnight(date(2025, 6, 4))
    points = [replace(p, gas=None, gas_timestamp=None) for p in week[2] if start <= p.timestamp <= end + HOUR]
    rows = ready(compute_day(points, date(2025, 6, 3), now=LATER, prices=prices))
    assert rows.day.gas is None and rows.day.gas_cost is None
    assert rows.day.total_cost == sum(
        (
            c
            for c in (rows.day.electricity1_cost, rows.day.electricity2_cost, rows.day.fixed_cost)
            if c is not None
        ),
        Decimal(0),
    )
    assert all(h.gas is None for h in rows.hours)


def test_day_so_far_runs_from_midnight_to_the_newest_reading(week: Run) -> None:
    _, truth, points = week
    day = date(2025, 6, 4)
    noon = local_midnight(day) + timedelta(hours=12)
    partial = day_so_far([p for p in points if p.timestamp <= noon], day)
    assert partial is not None
    # The newest telegram (11:59:57) shows the minutes ended by 11:59; gas from 11:55 (30 s lag).
    assert_energy(partial, truth.wh_between(local_midnight(day), noon - timedelta(minutes=1)))
    assert partial.gas == kwh(truth.gas_l_between(local_midnight(day), noon - timedelta(minutes=5)))


def test_water_is_measured_like_gas() -> None:
    start = local_midnight(date(2025, 6, 3))
    points = [
        ReadingPoint(
            "m",
            start + n * timedelta(minutes=30),
            Decimal(n),
            Decimal(0),
            Decimal(0),
            Decimal(0),
            water=Decimal(100 + n),
        )
        for n in range(52)
    ]
    rows = ready(compute_day(points, date(2025, 6, 3), now=LATER))
    assert rows.day.water == Decimal(48) and rows.day.electricity1 == Decimal(48)
    assert rows.hours[0].water == Decimal(2)


def test_a_day_is_ready_at_local_midnight_exactly(week: Run) -> None:
    end = local_midnight(date(2025, 6, 3))
    rows = ready(compute_day(week[2], date(2025, 6, 2), now=end))
    assert isinstance(rows.day, DayStatistics) and rows.day.day == date(2025, 6, 2)
    assert rows.hours[0].hour_start == datetime(2025, 6, 1, 22, tzinfo=UTC)


def test_days_to_compute_runs_from_the_last_done_day_to_yesterday() -> None:
    now = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)  # 1 April 00:30 in Amsterdam
    first = datetime(2025, 3, 28, 23, 30, tzinfo=UTC)  # 29 March 00:30 local
    assert days_to_compute(first, None, now=now) == [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)]
    assert days_to_compute(first, date(2025, 3, 30), now=now) == [date(2025, 3, 31)]
    assert days_to_compute(first, date(2025, 3, 31), now=now) == []


def _rough(points: list[ReadingPoint], seed: int) -> list[ReadingPoint]:
    """The readings with untidy sub-meters: gas values missing or stamped out of order, water
    without its own time (the reading's time counts then), some of it missing."""
    rng = random.Random(seed)
    out = []
    for p in points:
        gas_time = p.gas_timestamp
        if gas_time is not None and rng.random() < 0.05:
            gas_time += timedelta(minutes=rng.choice((-20, -5, 5, 70)))
        gas = None if rng.random() < 0.05 else p.gas
        water = None if rng.random() < 0.3 else p.delivered_1 * 7
        out.append(replace(p, gas=gas, gas_timestamp=gas_time, water=water))
    return out


@pytest.mark.parametrize("run_name", ["week", "spring", "autumn"])
def test_a_day_from_its_boundary_readings_equals_the_day_from_all_of_them(
    run_name: str, request: pytest.FixtureRequest, prices: PriceTable
) -> None:
    """``day_points`` keeps a few dozen readings of a day (memory); the rows must not change."""
    scenario, _, points = request.getfixturevalue(run_name)
    for seed, readings in enumerate((points, _rough(points, 1), _rough(points, 2))):
        for day in the_days(scenario):
            start, end = local_midnight(day), local_midnight(day + ONE_DAY)
            inside = [p for p in readings if start <= p.timestamp < end]
            after = [p for p in readings if p.timestamp >= end]
            kept = list(day_points(inside, day))
            assert len(kept) < 4 * 26, (run_name, seed, day, len(kept))
            whole = compute_day(inside + after, day, now=LATER, prices=prices)
            assert compute_day(kept + after, day, now=LATER, prices=prices) == whole, (run_name, seed, day)
