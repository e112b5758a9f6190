"""Consumption and statistics: per-minute electricity, gas, quarter-hour peaks, hours, days.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from dsmr_backend.storage import statistics_schema as s

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    ("electricity_consumption", s.electricity_consumption_columns),
    ("gas_consumption", s.gas_consumption_columns),
    ("quarter_hour_peaks", s.quarter_hour_peaks_columns),
    ("hour_statistics", s.hour_statistics_columns),
    ("day_statistics", s.day_statistics_columns),
)


def upgrade() -> None:
    """Create the tables (each unique per meter and period)."""
    for name, columns in TABLES:
        op.create_table(name, *columns())


def downgrade() -> None:
    """Drop the tables."""
    for name, _columns in reversed(TABLES):
        op.drop_table(name)
