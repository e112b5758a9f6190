"""Bring a database up to date at start: Alembic revisions, then the field table's columns."""

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, inspect

from dsmr_backend.storage.schema import field_columns, readings

log = logging.getLogger(__name__)

MIGRATION_LOCK_ID = 0x44534D52  # "DSMR": any constant shared by every replica
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Build the Alembic configuration in code (no alembic.ini at run time)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def add_missing_field_columns(connection: Connection) -> list[str]:
    """Add a nullable column for every stored field the readings table lacks; return their names.

    Fields are one row each in the field table; a row added in a later release becomes a column
    here without a hand-written revision (additive only: nothing is dropped or retyped).
    """
    present = {column["name"] for column in inspect(connection).get_columns(readings.name)}
    added = []
    for column in field_columns():
        if column.name in present:
            continue
        type_sql = column.type.compile(dialect=connection.dialect)
        connection.exec_driver_sql(f'ALTER TABLE {readings.name} ADD COLUMN "{column.name}" {type_sql}')
        added.append(column.name)
    return added


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of replicas sharing one SQLite file (PostgreSQL locks in-database)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with Path(f"{database}.migrate.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Apply every pending revision and add new field columns, in one transaction."""
    with _migration_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: the second waits here, then finds nothing to do.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID:d})")
        command.upgrade(alembic_config(connection), "head")
        added = add_missing_field_columns(connection)
    if added:
        log.info("added columns for new fields: %s", ", ".join(added))
