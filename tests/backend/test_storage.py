"""Storage on SQLite and PostgreSQL: migrations, table-driven columns, idempotent batched inserts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from dsmr_backend.errors import StorageError
from dsmr_backend.fields import stored_fields
from dsmr_backend.parser import parse
from dsmr_backend.storage import migrate as migrate_module
from dsmr_backend.storage.bulk import part_sizes
from dsmr_backend.storage.engine import make_engine, normalise_url
from dsmr_backend.storage.migrate import alembic_config
from dsmr_backend.storage.rows import MeterReading, as_utc
from dsmr_backend.storage.schema import field_columns, mbus_readings, readings
from dsmr_backend.storage.store import ReadingStore
from dsmr_backend.storage.tables import metadata
from tests.backend.telegrams import real_telegrams, v5_item, v5_utc


def stored_row(store: ReadingStore, meter: str, when: datetime) -> dict[str, Any]:
    """One stored reading as a dict, read back through SQLAlchemy."""
    meters = metadata.tables["meters"]
    query = (
        sa.select(readings)
        .join(meters, meters.c.id == readings.c.meter_id)
        .where(meters.c.name == meter, readings.c.timestamp == when)
    )
    with store.engine.connect() as connection:
        return dict(connection.execute(query).mappings().one())


def test_migrations_create_every_table_and_run_twice(store: ReadingStore) -> None:
    store.migrate()  # a second start finds nothing to do
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"meters", "readings", "mbus_readings", "service_counters", "alembic_version"} <= names
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_migrated_schema_matches_the_models(store: ReadingStore) -> None:
    # A model change without a migration (or a new field without its column) shows up here.
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_one_column_per_stored_field(store: ReadingStore) -> None:
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("readings")}
    for field in stored_fields():
        assert field.key in columns
    assert {"meter_id", "timestamp", "extra", "processed"} <= columns


def test_a_new_field_row_becomes_a_column_at_start(
    store: ReadingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def with_new_field() -> list[sa.Column[Any]]:
        return [*field_columns(), sa.Column("test_new_field", sa.Numeric(12, 3))]

    monkeypatch.setattr(migrate_module, "field_columns", with_new_field)
    store.migrate()
    store.migrate()  # already there: nothing to add
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("readings")}
    assert "test_new_field" in columns


def test_save_reports_new_readings_and_skips_repeats(store: ReadingStore) -> None:
    first = store.save([v5_item(0), v5_item(10)])
    assert [i.timestamp for i in first.new] == [v5_utc(0), v5_utc(10)]
    again = store.save([v5_item(10), v5_item(20)])  # 10 is a redelivery
    assert [i.timestamp for i in again.new] == [v5_utc(20)]
    assert again.duplicates == 1
    assert store.count_readings() == 3


def test_the_same_telegram_twice_in_one_batch_is_stored_once(store: ReadingStore) -> None:
    result = store.save([v5_item(0), v5_item(0), v5_item(0, meter="m2")])
    assert len(result.new) == 2
    assert store.count_readings("m1") == 1
    assert store.count_readings("m2") == 1


def test_big_batches_are_split_below_the_parameter_limit(store: ReadingStore) -> None:
    result = store.save([v5_item(i) for i in range(1500)])
    assert len(result.new) == 1500
    assert store.count_readings() == 1500


def test_batches_of_any_size_use_a_few_statement_shapes(store: ReadingStore) -> None:
    # The drivers keep prepared statements by text (pysqlite 128 per connection): one INSERT per
    # batch size made a connection hold up to 128 statements of up to 500 rows (~90 MiB RSS).
    statements: set[str] = set()

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith('INSERT INTO "readings"'):
            statements.add(statement)

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    offset = 0
    for size in (*range(1, 40), 127, 128, 129, 255, 300, 499, 500):
        result = store.save([v5_item(offset + i) for i in range(size)])
        assert len(result.new) == size
        offset += size
    assert store.count_readings() == offset
    assert 0 < len(statements) <= 8  # rows per INSERT: 1, 2, 4, ... 128
    assert part_sizes(500, 128) == [128, 128, 128, 64, 32, 16, 4]
    assert part_sizes(1000, 50) == [32] * 31 + [8]  # a part never passes the parameter limit


def test_every_real_telegram_round_trips(store: ReadingStore) -> None:
    fallback = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    items = []
    for name, text in real_telegrams().items():
        reading = parse(text, received_at=fallback)
        items.append(MeterReading(name, reading.timestamp or fallback, reading, text))
    assert len(store.save(items).new) == len(items)  # one batch, many meters and shapes
    for entry in items:
        row = stored_row(store, entry.meter, entry.timestamp)
        assert as_utc(row["timestamp"]) == entry.timestamp
        for field in stored_fields():
            if field.key == "timestamp":
                continue
            expected = entry.reading.values.get(field.key)
            actual = row[field.key]
            if isinstance(expected, datetime):
                actual = as_utc(actual)
            if isinstance(expected, Decimal):
                assert Decimal(actual) == expected, (entry.meter, field.key)
            else:
                assert actual == expected, (entry.meter, field.key)
        if entry.reading.extras:
            assert row["extra"]["unknown"] == entry.reading.extras


def test_mbus_readings_are_stored_per_channel_once(store: ReadingStore) -> None:
    text = real_telegrams()["v5_two_mbus"]
    reading = parse(text)
    assert reading.timestamp is not None
    store.save([MeterReading("m", reading.timestamp, reading, text)])
    store.save([MeterReading("m", reading.timestamp.replace(second=59), reading, text)])
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(mbus_readings)).mappings().all()
    timed = [d for d in reading.mbus.values() if d.timestamp and d.value is not None]
    assert len(rows) == len(timed) >= 1  # the second telegram repeats the gas reading
    gas = next(r for r in rows if r["channel"] == 2)
    assert Decimal(gas["value"]) == Decimal("246.138")
    assert as_utc(gas["timestamp"]) == datetime(2020, 4, 26, 20, 30, 1, tzinfo=UTC)


def test_rejections_are_counted_persistently(store: ReadingStore, database_url: str) -> None:
    store.save([v5_item(0)], rejected=2)
    store.save([], rejected=3)
    again = ReadingStore(make_engine(database_url))
    assert again.counter("rejected_telegrams") == 5
    assert again.bump("rejected_telegrams") == 6
    again.engine.dispose()


def test_first_meter_is_the_oldest(store: ReadingStore) -> None:
    assert store.first_meter() is None
    store.save([v5_item(0, "b")])
    store.save([v5_item(0, "a")])
    assert store.first_meter() == "b"


def test_sqlite_runs_in_wal_mode(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'db.sqlite3'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_plain_postgres_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(StorageError):
        make_engine(url)


def test_an_unreachable_database_raises_storage_error() -> None:
    store = ReadingStore(make_engine("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"))
    with pytest.raises(StorageError, match="cannot migrate"):
        store.migrate()
