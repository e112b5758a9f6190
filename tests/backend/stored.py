"""Put generated readings (analytics ReadingPoints) into a real store, and read statistics back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from dsmr_backend.analytics.model import ReadingPoint
from dsmr_backend.storage.bulk import insert_new
from dsmr_backend.storage.schema import meters, readings
from dsmr_backend.storage.statistics_schema import (
    day_statistics,
    electricity_consumption,
    gas_consumption,
    hour_statistics,
    quarter_hour_peaks,
)

COLUMN_OF = {
    "delivered_1": "electricity_delivered_1",
    "delivered_2": "electricity_delivered_2",
    "returned_1": "electricity_returned_1",
    "returned_2": "electricity_returned_2",
    "currently_delivered": "electricity_currently_delivered",
    "currently_returned": "electricity_currently_returned",
    "gas": "extra_device_delivered",
    "gas_timestamp": "extra_device_timestamp",
    "water": "water_delivered",
}
STATISTICS_TABLES = (
    electricity_consumption,
    gas_consumption,
    quarter_hour_peaks,
    hour_statistics,
    day_statistics,
)


def meter_id(engine: Engine, name: str) -> int:
    """The id of a meter, created when missing."""
    with engine.begin() as connection:
        found = connection.execute(sa.select(meters.c.id).where(meters.c.name == name)).scalar()
        if found is None:
            row = {"name": name, "header": "TST5\\test", "created_at": datetime.now(UTC)}
            found = connection.execute(sa.insert(meters).values(row).returning(meters.c.id)).scalar_one()
    return int(found)


def reading_row(mid: int, point: ReadingPoint) -> dict[str, Any]:
    """A readings row of a generated point."""
    row: dict[str, Any] = {"meter_id": mid, "timestamp": point.timestamp}
    for name in point.__dataclass_fields__:
        value = getattr(point, name)
        if name not in ("meter", "timestamp") and value is not None:
            row[COLUMN_OF.get(name, name)] = value
    return row


def store_points(engine: Engine, points: list[ReadingPoint]) -> int:
    """Insert the points as readings (idempotent); return how many were new."""
    if not points:
        return 0
    mid = meter_id(engine, points[0].meter)
    with engine.begin() as connection:
        new = insert_new(
            connection, readings, [reading_row(mid, p) for p in points], ["meter_id", "timestamp"]
        )
    return len(new)


def table_rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of a statistics table without its id, in key order."""
    key = [c for c in table.columns if c.name not in ("id",)][:2]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table).order_by(*key)).mappings().all()
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def delete_statistics(engine: Engine) -> None:
    """Delete every consumption and statistics row."""
    with engine.begin() as connection:
        for table in STATISTICS_TABLES:
            connection.execute(sa.delete(table))
