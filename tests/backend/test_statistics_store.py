"""The statistics task on SQLite and PostgreSQL: truth, recomputation, rollback, catch-up, replicas."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from dsmr_backend.analytics import (
    DayRows,
    PriceTable,
    ReadingPoint,
    compute_day,
    electricity_per_minute,
    gas_changes,
    parse_prices,
    quarter_hour_peaks,
)
from dsmr_backend.statistics_task import StatisticsTask
from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.schema import readings
from dsmr_backend.storage.statistics_schema import (
    day_statistics,
    electricity_consumption,
    gas_consumption,
    hour_statistics,
)
from dsmr_backend.storage.statistics_schema import (
    quarter_hour_peaks as peaks_table,
)
from dsmr_backend.storage.statistics_store import StatisticsStore
from dsmr_backend.storage.store import ReadingStore
from tests.backend.analytics.expected import contract_for, day_costs, kwh, prices_toml
from tests.backend.analytics.generator import Scenario, Truth, generate, local_midnight
from tests.backend.stored import STATISTICS_TABLES, delete_statistics, meter_id, store_points, table_rows

LATER = datetime(2030, 1, 1, tzinfo=UTC)
# The spring switch (30 March 2025 has 23 hours) and a normal Monday; a telegram every 2 min, gas every 5.
SPRING = Scenario(date(2025, 3, 30), date(2025, 3, 31), interval_s=120, offset_s=13, seed=21)
DAYS = [date(2025, 3, 30), date(2025, 3, 31)]
HOURS = 23 + 24


@pytest.fixture(scope="module")
def spring() -> tuple[Truth, list[ReadingPoint]]:
    """The generated readings and their ground truth."""
    return generate(SPRING)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    """The test contracts (2025 first half, then from July)."""
    return parse_prices(prices_toml())


def task_for(store: ReadingStore, prices: PriceTable | None = None, now: datetime = LATER) -> StatisticsTask:
    """A statistics task on the store's database with a fixed clock."""
    return StatisticsTask(StatisticsStore(store.engine), prices=prices, clock=lambda: now)


def snapshot(store: ReadingStore) -> dict[str, list[dict[str, object]]]:
    """Every row of every statistics table."""
    return {table.name: table_rows(store.engine, table) for table in STATISTICS_TABLES}


def assert_days_match_the_truth(store: ReadingStore, truth: Truth) -> None:
    """Every stored day and hour against the generator's truth: exact to the Wh and the cent."""
    rows = {r["day"]: r for r in table_rows(store.engine, day_statistics)}
    assert sorted(rows) == DAYS
    for day in DAYS:
        start, end = local_midnight(day), local_midnight(day + timedelta(days=1))
        wh, gas_l = truth.wh_between(start, end), truth.gas_l_between(start, end)
        row = rows[day]
        assert (row["electricity1"], row["electricity2"]) == (kwh(wh["d1"]), kwh(wh["d2"]))
        assert (row["electricity1_returned"], row["electricity2_returned"]) == (kwh(wh["r1"]), kwh(wh["r2"]))
        assert row["gas"] == kwh(gas_l)
        for name, value in day_costs(wh, gas_l, contract_for(day)).items():
            assert row[name] == value, (day, name)
    hours = table_rows(store.engine, hour_statistics)
    assert len(hours) == HOURS  # the spring switch day has 23 hours
    for hour in hours:
        start = hour["hour_start"].replace(tzinfo=UTC)
        wh = truth.wh_between(start, start + timedelta(hours=1))
        assert hour["electricity1"] + hour["electricity2"] == kwh(wh["d1"] + wh["d2"]), start


def test_stored_statistics_match_the_truth_and_recomputing_gives_identical_rows(
    store: ReadingStore, spring: tuple[Truth, list[ReadingPoint]], prices: PriceTable
) -> None:
    truth, points = spring
    store_points(store.engine, points)
    saved, more = task_for(store, prices).run()
    assert not more
    assert [d.day for s in saved for d in s.days] == DAYS
    assert_days_match_the_truth(store, truth)
    before = snapshot(store)
    assert all(before.values())
    delete_statistics(store.engine)
    saved, _more = task_for(store, prices).run()
    assert snapshot(store) == before
    assert sum(len(s.days) for s in saved) == len(DAYS)  # new again, so post_save again


def test_consumption_rows_are_what_the_analytics_compute(
    store: ReadingStore, spring: tuple[Truth, list[ReadingPoint]]
) -> None:
    _truth, points = spring
    store_points(store.engine, points)
    task = task_for(store)
    task.chunk = 1000  # several chunks: the cursors come from the store
    task.run()
    minutes = table_rows(store.engine, electricity_consumption)
    expected = electricity_per_minute(points)
    assert len(minutes) == len(expected)
    assert [m["delivered_1"] for m in minutes] == [e.delivered_1 for e in expected]
    assert [m["currently_delivered"] for m in minutes] == [e.currently_delivered for e in expected]
    gas = table_rows(store.engine, gas_consumption)
    assert [(g["delivered"], g["currently_delivered"]) for g in gas] == [
        (e.delivered, e.currently_delivered) for e in gas_changes(points)
    ]
    for row in table_rows(store.engine, day_statistics):  # no prices configured: no costs, never wrong ones
        assert row["total_cost"] is None and row["electricity1"] > Decimal(0)
    peaks = table_rows(store.engine, peaks_table)
    assert [p["average_delivered"] for p in peaks] == [
        e.average_delivered for e in quarter_hour_peaks(points)
    ]


def test_a_failure_between_the_hours_and_the_day_row_leaves_no_partial_day(
    store: ReadingStore, spring: tuple[Truth, list[ReadingPoint]]
) -> None:
    store_points(store.engine, spring[1])
    rows = compute_day(spring[1], DAYS[0], now=LATER)
    assert isinstance(rows, DayRows) and len(rows.hours) == 23

    def crash(connection: sa.Connection) -> None:
        inserted = connection.execute(sa.select(sa.func.count()).select_from(hour_statistics)).scalar()
        assert inserted == 23  # the hours were written in this transaction ...
        raise RuntimeError("killed between the hours and the day")

    statistics = StatisticsStore(store.engine)
    mid = meter_id(store.engine, SPRING.meter)
    with pytest.raises(RuntimeError):
        statistics.save_day(mid, rows, between=crash)
    assert table_rows(store.engine, hour_statistics) == []  # ... and rolled back with it
    assert table_rows(store.engine, day_statistics) == []
    day, hours = statistics.save_day(mid, rows)
    assert day is not None and len(hours) == 23


def test_a_backend_that_was_down_catches_up_by_itself(
    store: ReadingStore, spring: tuple[Truth, list[ReadingPoint]], prices: PriceTable
) -> None:
    _truth, points = spring
    first_day_over = local_midnight(DAYS[1]) + timedelta(hours=1)  # then down for a day
    store_points(store.engine, [p for p in points if p.timestamp < first_day_over])
    saved, _more = task_for(store, prices, now=first_day_over).run()
    assert [d.day for s in saved for d in s.days] == DAYS[:1]
    # Down for a day: the readings arrive (redelivered by the broker) and a NEW task starts.
    store_points(store.engine, points)
    saved, _more = task_for(store, prices).run()
    assert [d.day for s in saved for d in s.days] == DAYS[1:]
    assert_days_match_the_truth(store, spring[0])  # as if it had never been down


def test_two_replicas_computing_the_same_days_never_double_rows(
    store: ReadingStore, database_url: str, spring: tuple[Truth, list[ReadingPoint]], prices: PriceTable
) -> None:
    store_points(store.engine, spring[1])
    engines = [make_engine(database_url) for _ in range(2)]
    results: list[int] = []
    errors: list[BaseException] = []

    def replica(engine: sa.Engine) -> None:
        try:
            task = StatisticsTask(StatisticsStore(engine), prices=prices, clock=lambda: LATER)
            saved, _more = task.run()
            results.append(sum(len(s.days) for s in saved))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert not errors
    assert sum(results) == len(DAYS)  # each day was new for exactly one replica
    assert len(table_rows(store.engine, day_statistics)) == len(DAYS)
    assert len(table_rows(store.engine, hour_statistics)) == HOURS


def test_retention_thins_old_readings_and_the_statistics_stay_the_same(
    store: ReadingStore, spring: tuple[Truth, list[ReadingPoint]], prices: PriceTable
) -> None:
    store_points(store.engine, spring[1])
    task = task_for(store, prices)
    task.run()
    before = snapshot(store)
    task.retention_days = 30
    deleted = task.retention(force=True)
    with store.engine.connect() as connection:
        left = connection.execute(sa.select(sa.func.count()).select_from(readings)).scalar_one()
    assert deleted > 0 and left + deleted == len(spring[1])
    assert left <= 6 * (HOURS + 2)  # a few readings per hour remain (of 30)
    delete_statistics(store.engine)
    task_for(store, prices).run()
    after = snapshot(store)
    for name in ("day_statistics", "hour_statistics"):
        assert after[name] == before[name]
