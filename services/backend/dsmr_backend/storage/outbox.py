"""The signal outbox table: envelopes written in the transaction of the records they announce.

A row stays until the broker acknowledged its publish, so a crash between the commit and the
publish leaves it here for the next start to send; the stored JSON keeps the envelope's id.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from dsmr_backend.storage.schema import BigId, metadata

DELETE_CHUNK = 500
"""Ids per DELETE, well below either dialect's parameter limit."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored envelope: its row id, its signal, and its JSON exactly as it is published."""

    id: int
    signal: str
    payload: bytes


def outbox_columns() -> list[sa.Column[Any]]:
    """Columns of ``signal_outbox``: one row per envelope not yet acknowledged by the broker."""
    return [
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("signal", sa.String(255), nullable=False),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


# sqlite_autoincrement: SQLite must never hand a deleted row's id to a new row, or a late delete
# meant for the old envelope (another replica's, on a shared file) would remove the new one.
signal_outbox = sa.Table("signal_outbox", metadata, *outbox_columns(), sqlite_autoincrement=True)


def add(connection: Connection, rows: Sequence[tuple[str, str, bytes]]) -> list[int]:
    """Insert (signal, sender, envelope JSON) rows in the caller's transaction; return their ids in order."""
    if not rows:
        return []
    now = datetime.now(UTC)
    values = [
        {"signal": signal, "sender": sender, "envelope": payload.decode(), "created_at": now}
        for signal, sender, payload in rows
    ]
    statement = sa.insert(signal_outbox).returning(signal_outbox.c.id, sort_by_parameter_order=True)
    return [int(row_id) for row_id in connection.execute(statement, values).scalars()]


def remove(connection: Connection, ids: Sequence[int]) -> int:
    """Delete rows by id (ids already gone are no error); return how many went."""
    deleted = 0
    for start in range(0, len(ids), DELETE_CHUNK):
        part = list(ids[start : start + DELETE_CHUNK])
        deleted += connection.execute(sa.delete(signal_outbox).where(signal_outbox.c.id.in_(part))).rowcount
    return deleted


def oldest(connection: Connection) -> list[OutboxRow]:
    """Every row, oldest first."""
    query = sa.select(signal_outbox.c.id, signal_outbox.c.signal, signal_outbox.c.envelope).order_by(
        signal_outbox.c.id
    )
    return [OutboxRow(int(i), str(s), str(e).encode()) for i, s, e in connection.execute(query)]


def count(connection: Connection) -> int:
    """How many rows wait."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(signal_outbox)).scalar_one())
