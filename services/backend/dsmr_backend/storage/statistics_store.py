"""Reading points in, consumption and statistics out: the store side of issue 6.

Every write is an insert-if-absent on the table's unique (meter, period) key, and a day is
written with its hours in one transaction: a crash leaves a day complete or absent, and two
replicas computing the same day store it once.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from dsmr_backend.analytics import (
    DayRows,
    DayStatistics,
    ElectricityConsumption,
    GasConsumption,
    HourStatistics,
    QuarterHourPeak,
    ReadingPoint,
    as_record,
    point_from_values,
)
from dsmr_backend.storage.bulk import insert_new, parse_returned_time
from dsmr_backend.storage.rows import as_utc
from dsmr_backend.storage.schema import meters, readings
from dsmr_backend.storage.statistics_schema import (
    day_statistics,
    electricity_consumption,
    gas_consumption,
    hour_statistics,
    quarter_hour_peaks,
)

POINT_KEYS = (
    "electricity_delivered_1",
    "electricity_delivered_2",
    "electricity_returned_1",
    "electricity_returned_2",
    "electricity_currently_delivered",
    "electricity_currently_returned",
    *(f"phase_currently_{w}_{p}" for w in ("delivered", "returned") for p in ("l1", "l2", "l3")),
    *(f"phase_voltage_{p}" for p in ("l1", "l2", "l3")),
    *(f"phase_power_current_{p}" for p in ("l1", "l2", "l3")),
    "extra_device_delivered",
    "extra_device_timestamp",
    "water_delivered",
    "water_timestamp",
)
"""The reading columns the analytics read (``point_from_values`` keys)."""
DAY_KEYS = (
    *POINT_KEYS[:4],
    "extra_device_delivered",
    "extra_device_timestamp",
    "water_delivered",
    "water_timestamp",
)
"""The columns hour and day statistics read: registers, gas and water."""
STREAM_ROWS = 2000
"""Rows fetched at a time when a day of readings is streamed."""

Hook = Callable[[Connection], None]
Then = Callable[[Connection, list[Any]], None]
"""An in-transaction hook called with the records that were new (the outbox stages post_save)."""


def _point_columns(keys: Sequence[str] = POINT_KEYS) -> list[sa.ColumnElement[Any]]:
    return [readings.c.timestamp, *(readings.c[k] for k in keys if k in readings.c)]


def _to_point(meter: str, row: sa.Row[Any]) -> ReadingPoint | None:
    values = {k: (as_utc(v) if isinstance(v, datetime) else v) for k, v in row._mapping.items()}
    return point_from_values(meter, values.pop("timestamp"), values)


def _returned_key(value: Any) -> Any:
    """A RETURNING key as the record holds it: SQLite hands back text (a day, or a naive time)."""
    if isinstance(value, str):
        return date.fromisoformat(value) if len(value) == len("2025-06-02") else parse_returned_time(value)
    return parse_returned_time(value) if isinstance(value, datetime) else value


class StatisticsStore:
    """Queries and idempotent writes of consumption and statistics, per meter."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._columns = _point_columns()
        self._day_columns = _point_columns(DAY_KEYS)

    # -- meters and readings ----------------------------------------------------------------------

    def meters(self) -> dict[str, int]:
        """Every stored meter: name -> id."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(meters.c.name, meters.c.id).order_by(meters.c.id))
            return {str(name): int(meter_id) for name, meter_id in rows}

    def points(
        self,
        meter: str,
        meter_id: int,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[ReadingPoint]:
        """The meter's readings in [start, end) in time order (at most ``limit``)."""
        query = sa.select(*self._columns).where(readings.c.meter_id == meter_id)
        if start is not None:
            query = query.where(readings.c.timestamp >= start)
        if end is not None:
            query = query.where(readings.c.timestamp < end)
        query = query.order_by(readings.c.timestamp).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [p for p in (_to_point(meter, r) for r in rows) if p is not None]

    def day_readings(
        self, meter: str, meter_id: int, start: datetime, end: datetime
    ) -> Iterator[ReadingPoint]:
        """The meter's readings in [start, end) in time order, with ``DAY_KEYS`` only, fetched in parts.

        A day is 86,400 readings: consume this lazily (``analytics.day_points``), never as a list.
        """
        query = (
            sa.select(*self._day_columns)
            .where(readings.c.meter_id == meter_id, readings.c.timestamp >= start, readings.c.timestamp < end)
            .order_by(readings.c.timestamp)
        )
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=STREAM_ROWS).execute(query):
                point = _to_point(meter, row)
                if point is not None:
                    yield point

    def first_point(
        self, meter: str, meter_id: int, at_or_after: datetime, *, sub_meter: str | None = None
    ) -> ReadingPoint | None:
        """The first reading at or after a time; with ``sub_meter`` (a timestamp column) the
        first whose sub-meter value is stamped at or after it."""
        query = sa.select(*self._columns).where(
            readings.c.meter_id == meter_id, readings.c.timestamp >= at_or_after
        )
        if sub_meter is not None:
            query = query.where(readings.c[sub_meter] >= at_or_after)
        with self.engine.connect() as connection:
            row = connection.execute(query.order_by(readings.c.timestamp).limit(1)).first()
        return None if row is None else _to_point(meter, row)

    def newest_point(self, meter: str, meter_id: int) -> ReadingPoint | None:
        """The meter's newest reading."""
        query = (
            sa.select(*self._columns)
            .where(readings.c.meter_id == meter_id)
            .order_by(readings.c.timestamp.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _to_point(meter, row)

    def first_reading_time(self, meter_id: int) -> datetime | None:
        """When the meter's first stored reading was taken."""
        return self._reading_time(sa.func.min(readings.c.timestamp), meter_id)

    def newest_reading_time(self, meter_id: int) -> datetime | None:
        """When the meter's newest stored reading was taken."""
        return self._reading_time(sa.func.max(readings.c.timestamp), meter_id)

    def _reading_time(self, aggregate: sa.ColumnElement[Any], meter_id: int) -> datetime | None:
        query = sa.select(aggregate).where(readings.c.meter_id == meter_id)
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else as_utc(found)

    # -- cursors: where the stored results end -------------------------------------------------------

    def _latest(self, table: sa.Table, column: str, meter_id: int) -> Any:
        query = sa.select(sa.func.max(table.c[column])).where(table.c.meter_id == meter_id)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def last_minute(self, meter_id: int) -> datetime | None:
        """The end of the newest stored minute of electricity."""
        found = self._latest(electricity_consumption, "read_at", meter_id)
        return None if found is None else as_utc(found)

    def last_peak_start(self, meter_id: int) -> datetime | None:
        """The start reading of the newest stored quarter-hour peak."""
        found = self._latest(quarter_hour_peaks, "read_at_start", meter_id)
        return None if found is None else as_utc(found)

    def last_gas(self, meter: str, meter_id: int) -> GasConsumption | None:
        """The newest stored gas record (the ``previous`` of the next gas changes)."""
        query = (
            sa.select(
                gas_consumption.c.read_at, gas_consumption.c.delivered, gas_consumption.c.currently_delivered
            )
            .where(gas_consumption.c.meter_id == meter_id)
            .order_by(gas_consumption.c.read_at.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else GasConsumption(meter, as_utc(row[0]), row[1], row[2])

    def last_peak(self, meter: str, meter_id: int) -> QuarterHourPeak | None:
        """The newest stored quarter-hour peak."""
        query = (
            sa.select(
                quarter_hour_peaks.c.read_at_start,
                quarter_hour_peaks.c.read_at_end,
                quarter_hour_peaks.c.average_delivered,
            )
            .where(quarter_hour_peaks.c.meter_id == meter_id)
            .order_by(quarter_hour_peaks.c.read_at_start.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else QuarterHourPeak(meter, as_utc(row[0]), as_utc(row[1]), row[2])

    def last_day(self, meter_id: int) -> date | None:
        """The newest day with statistics."""
        found = self._latest(day_statistics, "day", meter_id)
        return date.fromisoformat(found) if isinstance(found, str) else found

    # -- writes -------------------------------------------------------------------------------------

    def save_consumption(
        self,
        meter_id: int,
        minutes: Sequence[ElectricityConsumption],
        gas: Sequence[GasConsumption],
        peaks: Sequence[QuarterHourPeak],
        *,
        then: Then | None = None,
    ) -> tuple[list[ElectricityConsumption], list[GasConsumption], list[QuarterHourPeak]]:
        """Insert-if-absent in one transaction; return the records that were new.

        ``then`` runs last inside the transaction with the new records.
        """
        with self.engine.begin() as connection:
            new = (
                _insert(connection, electricity_consumption, meter_id, minutes, "read_at"),
                _insert(connection, gas_consumption, meter_id, gas, "read_at"),
                _insert(connection, quarter_hour_peaks, meter_id, peaks, "read_at_start"),
            )
            if then is not None:
                then(connection, [*new[0], *new[1], *new[2]])
        return new

    def save_day(
        self, meter_id: int, rows: DayRows, *, between: Hook | None = None, then: Then | None = None
    ) -> tuple[DayStatistics | None, list[HourStatistics]]:
        """Write a day and its hours in ONE transaction; return what was new.

        The hours go first and the day row last, so a day row always has all its hours; a crash
        (or ``between`` raising, for tests) before the commit leaves neither. ``then`` runs last
        inside the transaction with the new hours and day.
        """
        with self.engine.begin() as connection:
            hours = _insert(connection, hour_statistics, meter_id, rows.hours, "hour_start")
            if between is not None:
                between(connection)
            days = _insert(connection, day_statistics, meter_id, [rows.day], "day")
            if then is not None:
                then(connection, [*hours, *days])
        return (days[0] if days else None), hours

    def days(self, meter: str, meter_id: int, first: date, last: date) -> list[DayStatistics]:
        """Stored day statistics from ``first`` to ``last`` (both included)."""
        query = (
            sa.select(day_statistics)
            .where(day_statistics.c.meter_id == meter_id, day_statistics.c.day.between(first, last))
            .order_by(day_statistics.c.day)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        skip = ("id", "meter_id")
        return [DayStatistics(meter=meter, **{k: v for k, v in r.items() if k not in skip}) for r in rows]

    def delete_readings(self, meter_id: int, timestamps: Sequence[datetime]) -> int:
        """Delete readings by time (retention); return how many went."""
        deleted = 0
        with self.engine.begin() as connection:
            for start in range(0, len(timestamps), 500):
                part = list(timestamps[start : start + 500])
                result = connection.execute(
                    sa.delete(readings).where(readings.c.meter_id == meter_id, readings.c.timestamp.in_(part))
                )
                deleted += result.rowcount
        return deleted


def _insert(
    connection: Connection, table: sa.Table, meter_id: int, records: Sequence[Any], key: str
) -> list[Any]:
    """Insert-if-absent; return the records that were new. Unknown (None) values are left out
    of the statement (NULL), which keeps it short: most meters lack most phase columns."""
    if not records:
        return []
    by_key = {getattr(r, key): r for r in records}
    rows = [
        {"meter_id": meter_id, **{k: v for k, v in as_record(r).items() if v is not None and k != "meter"}}
        for r in records
    ]
    returned = insert_new(connection, table, rows, ["meter_id", key])
    new = {_returned_key(value) for _meter, value in returned}
    return [record for k, record in by_key.items() if k in new]
