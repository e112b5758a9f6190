"""The tables, generated from the field table: one column per stored field, keyed by meter+time."""

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import SchemaItem

from dsmr_backend.fields import ColumnType, Field, stored_fields

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can refer to them on both dialects."""

KEY_FIELD = "timestamp"
"""The field that, with the meter, identifies a reading (the telegram's own time)."""

metadata = sa.MetaData(naming_convention=NAMING)

# SQLite only aliases the rowid for a column typed exactly INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def column_type(field: Field) -> sa.types.TypeEngine[Any]:
    """Map a field's storage column onto a SQLAlchemy type."""
    column = field.column
    if column is None:
        raise ValueError(f"field {field.key} is not stored")
    if column.type is ColumnType.NUMERIC:
        return sa.Numeric(column.precision, column.scale)
    if column.type is ColumnType.INTEGER:
        return sa.BigInteger()
    if column.type is ColumnType.DATETIME:
        return sa.DateTime(timezone=True)
    return sa.Text()


def field_columns() -> list[sa.Column[Any]]:
    """Fresh nullable columns for every stored field except the key (one per table row)."""
    return [
        sa.Column(f.key, column_type(f), nullable=True, comment=f.label)
        for f in stored_fields()
        if f.key != KEY_FIELD
    ]


@cache
def field_keys() -> tuple[str, ...]:
    """Keys of the per-field reading columns, in table order."""
    return tuple(f.key for f in stored_fields() if f.key != KEY_FIELD)


@cache
def column_keys() -> frozenset[str]:
    """``field_keys()`` as a set, for fast membership tests."""
    return frozenset(field_keys())


@cache
def time_keys() -> frozenset[str]:
    """Keys of the per-field columns that hold times (normalised to UTC before writing)."""
    return frozenset(
        f.key
        for f in stored_fields()
        if f.key != KEY_FIELD and f.column is not None and f.column.type is ColumnType.DATETIME
    )


def meters_columns() -> list[sa.Column[Any]]:
    """Columns of ``meters``: one row per meter name, with what its telegrams say about it."""
    return [
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("equipment_identifier", sa.String(128), nullable=True),
        sa.Column("header", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def readings_columns() -> list[SchemaItem]:
    """Columns of ``readings``: the key, one column per stored field, and the extras."""
    return [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.Integer(), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column(KEY_FIELD, sa.DateTime(timezone=True), nullable=False),
        # Consumption work (issue 6) marks the readings it has turned into consumption.
        sa.Column("processed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("extra", sa.JSON(), nullable=True),
        *field_columns(),
        sa.UniqueConstraint("meter_id", KEY_FIELD),
    ]


def mbus_readings_columns() -> list[SchemaItem]:
    """Columns of ``mbus_readings``: every M-Bus device reading, keyed by its own time."""
    return [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("meter_id", sa.Integer(), sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("channel", sa.SmallInteger(), nullable=False),
        sa.Column("device_type", sa.SmallInteger(), nullable=True),
        sa.Column("equipment_identifier", sa.String(128), nullable=True),
        sa.Column(KEY_FIELD, sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Numeric(18, 7), nullable=True),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.UniqueConstraint("meter_id", "channel", KEY_FIELD),
    ]


def counters_columns() -> list[sa.Column[Any]]:
    """Columns of ``service_counters``: persistent named counters (rejected_telegrams, ...)."""
    return [
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    ]


meters = sa.Table("meters", metadata, *meters_columns())
readings = sa.Table("readings", metadata, *readings_columns(), sa.Index(None, KEY_FIELD, "meter_id"))
mbus_readings = sa.Table("mbus_readings", metadata, *mbus_readings_columns())
service_counters = sa.Table("service_counters", metadata, *counters_columns())
