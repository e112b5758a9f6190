"""The reading store: batched, idempotent inserts that say which readings were new."""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from dsmr_backend.errors import BadDataError, StorageError
from dsmr_backend.storage import migrate
from dsmr_backend.storage.bulk import insert_new, parse_returned_time
from dsmr_backend.storage.rows import MeterReading, as_utc, mbus_rows, reading_row
from dsmr_backend.storage.schema import mbus_readings, meters, readings, service_counters

log = logging.getLogger(__name__)


Then = Callable[[Connection, list[MeterReading]], None]
"""An in-transaction hook of ``ReadingStore.save``, called with the readings that were new."""


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What one batch did: the readings stored for the first time, and the repeats skipped."""

    new: list[MeterReading]
    duplicates: int


def insert_ignoring_conflicts(connection: Connection, table: sa.Table, keys: Sequence[str]) -> Any:
    """An INSERT ... ON CONFLICT (keys) DO NOTHING for the connection's dialect."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys))


class ReadingStore:
    """Readings, M-Bus readings, meters and counters in one SQLite or PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._meter_ids: dict[str, int] = {}

    def migrate(self) -> None:
        """Bring the schema up to date (Alembic revisions, new field columns)."""
        try:
            migrate.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot migrate the database: {exc}") from exc

    def save(
        self, items: Sequence[MeterReading], rejected: int = 0, *, then: Then | None = None
    ) -> SaveResult:
        """Store a batch in one transaction; return the new readings (repeats are skipped).

        ``then`` runs last inside the transaction with the new readings: what it writes (their
        post_save envelopes) commits with them or not at all.
        """
        try:
            with self.engine.begin() as connection:
                meter_ids = self._meter_ids_for(connection, items)
                new = self._insert_readings(connection, meter_ids, items)
                self._insert_mbus(connection, meter_ids, new)
                if rejected:
                    self._bump(connection, "rejected_telegrams", rejected)
                if then is not None:
                    then(connection, new)
        except (DataError, IntegrityError) as exc:
            raise BadDataError(f"the database refused a value: {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot store {len(items)} reading(s): {exc}") from exc
        self._meter_ids.update(meter_ids)  # only ids that were committed are cached
        return SaveResult(new=new, duplicates=len(items) - len(new))

    def _meter_ids_for(self, connection: Connection, items: Iterable[MeterReading]) -> dict[str, int]:
        ids = dict(self._meter_ids)
        for item in items:
            if item.meter not in ids:
                ids[item.meter] = self._ensure_meter(connection, item)
        return ids

    def _ensure_meter(self, connection: Connection, item: MeterReading) -> int:
        identity = item.reading.meter
        row = {
            "name": item.meter,
            "equipment_identifier": (identity.equipment_id or "")[:128] or None,
            "header": identity.header[:128],
            "created_at": datetime.now(UTC),
        }
        connection.execute(insert_ignoring_conflicts(connection, meters, ["name"]), row)
        found = connection.execute(sa.select(meters.c.id).where(meters.c.name == item.meter))
        return int(found.scalar_one())

    def _insert_readings(
        self, connection: Connection, meter_ids: dict[str, int], items: Sequence[MeterReading]
    ) -> list[MeterReading]:
        unique: dict[tuple[int, datetime], MeterReading] = {}
        for item in items:  # a batch may hold the same telegram twice (redelivery)
            unique.setdefault((meter_ids[item.meter], as_utc(item.timestamp)), item)
        if not unique:
            return []
        rows = [reading_row(meter_id, item) for (meter_id, _), item in unique.items()]
        returned = insert_new(connection, readings, rows, ["meter_id", "timestamp"])
        inserted = {(int(m), parse_returned_time(t)) for m, t in returned}
        return [item for key, item in unique.items() if key in inserted]

    def _insert_mbus(
        self, connection: Connection, meter_ids: dict[str, int], items: Sequence[MeterReading]
    ) -> None:
        rows = [row for item in items for row in mbus_rows(meter_ids[item.meter], item.reading)]
        # Gas meters report hourly: most of these are repeats the key skips.
        insert_new(connection, mbus_readings, rows, ["meter_id", "channel", "timestamp"])

    def _bump(self, connection: Connection, name: str, n: int) -> None:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(service_counters).values(name=name, value=n)
        statement = statement.on_conflict_do_update(
            index_elements=["name"], set_={"value": service_counters.c.value + n}
        )
        connection.execute(statement)

    def counter(self, name: str) -> int:
        """The stored value of a persistent counter (0 when never bumped)."""
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(service_counters.c.value).where(service_counters.c.name == name)
            ).scalar_one_or_none()
        return int(found or 0)

    def bump(self, name: str, n: int = 1) -> int:
        """Add ``n`` to a persistent counter in its own transaction; return the new value."""
        with self.engine.begin() as connection:
            self._bump(connection, name, n)
        return self.counter(name)

    def first_meter(self) -> str | None:
        """The name of the first meter ever stored (the default meter unless configured)."""
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(meters.c.name).order_by(meters.c.id).limit(1)
            ).scalar_one_or_none()
        return str(found) if found is not None else None

    def count_readings(self, meter: str | None = None) -> int:
        """How many readings are stored (for one meter, or all)."""
        query = sa.select(sa.func.count()).select_from(readings)
        if meter is not None:
            query = query.join(meters, meters.c.id == readings.c.meter_id).where(meters.c.name == meter)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
