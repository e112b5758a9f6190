"""Fast multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING, for both dialects.

SQLAlchemy's per-row parameter processing costs more than the database itself at thousands of
readings per second, so the hot insert renders its SQL once per batch shape and hands the
database driver plain values: the same text SQLAlchemy would write (SQLite) or native types
(psycopg), so SQLAlchemy reads the rows back as usual.
"""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from dsmr_backend.storage.rows import as_utc

SQLITE_MAX_PARAMS = 32_000  # SQLite >= 3.32 allows 32,766 host parameters per statement
POSTGRES_MAX_PARAMS = 65_000  # the protocol's limit is 65,535
MAX_ROWS = 128
"""Most rows in one INSERT. The drivers keep prepared statements by their text (pysqlite 128 per
connection, psycopg 100), and a statement per batch size made each connection hold up to 128
multi-row INSERTs of up to 500 rows: ~90 MiB more RSS once batch sizes varied. Batches go in
power-of-two parts, so a table has at most 8 statement shapes (1, 2, 4, ... 128 rows)."""

Adapter = Callable[[Any], Any]


def sqlite_time(value: datetime | None) -> str | None:
    """A time as SQLAlchemy's SQLite DateTime writes it (UTC, microseconds)."""
    if value is None:
        return None
    v = as_utc(value)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def sqlite_number(value: Decimal | None) -> float | None:
    """A decimal as SQLite's NUMERIC affinity stores it (SQLAlchemy does the same)."""
    return None if value is None else float(value)


def as_json_text(value: Any) -> str | None:
    """JSON text, or SQL NULL for None."""
    return None if value is None else json.dumps(value, separators=(",", ":"))


def adapter_for(column: sa.Column[Any], dialect: str) -> Adapter | None:
    """How a value of ``column`` is handed to the driver (None: as it is)."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        if dialect == "postgresql":
            from psycopg.types.json import Json  # noqa: PLC0415 - only with PostgreSQL

            return lambda value: None if value is None else Json(value)
        return as_json_text
    if dialect != "sqlite":
        return None
    if isinstance(kind, sa.DateTime):
        return sqlite_time
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float | sa.Integer):
        return sqlite_number
    return None


def parse_returned_time(value: Any) -> datetime:
    """A RETURNING time: text from SQLite, an aware datetime from PostgreSQL."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return as_utc(value)


def insert_new(
    connection: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` skipping key conflicts; return the keys of the rows that were new.

    Rows may leave out columns (NULL); the statement names only the columns some row uses.
    """
    if not rows:
        return []
    dialect = connection.dialect.name
    used: set[str] = set()
    for row in rows:
        used.update(row)
    names = [column.name for column in table.columns if column.name in used]
    columns = [table.c[name] for name in names]
    adapters = [adapter_for(column, dialect) for column in columns]
    limit = SQLITE_MAX_PARAMS if dialect == "sqlite" else POSTGRES_MAX_PARAMS
    returned: list[tuple[Any, ...]] = []
    start = 0
    for size in part_sizes(len(rows), min(MAX_ROWS, limit // len(names))):
        part = rows[start : start + size]
        start += size
        sql = _statement(table.name, names, keys, size, dialect)
        params = [
            value if adapt is None or value is None else adapt(value)
            for row in part
            for value, adapt in zip(map(row.get, names), adapters, strict=True)
        ]
        result = connection.exec_driver_sql(sql, tuple(params))
        returned.extend(tuple(r) for r in result.all())
    return returned


def part_sizes(count: int, most: int) -> list[int]:
    """``count`` rows as parts of power-of-two sizes, largest first, none above ``most``."""
    largest = 1 << (max(1, most).bit_length() - 1)
    rest = count % largest
    smaller = [1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]
    return [largest] * (count // largest) + smaller


def _statement(table: str, names: list[str], keys: Sequence[str], count: int, dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    group = "(" + ", ".join([mark] * len(names)) + ")"
    quoted = ", ".join(f'"{name}"' for name in names)
    key_list = ", ".join(f'"{key}"' for key in keys)
    values = ", ".join([group] * count)
    # Names come from the table's metadata, never from input; values are bound parameters.
    return (
        f'INSERT INTO "{table}" ({quoted}) VALUES {values} '  # noqa: S608
        f"ON CONFLICT ({key_list}) DO NOTHING RETURNING {key_list}"
    )
