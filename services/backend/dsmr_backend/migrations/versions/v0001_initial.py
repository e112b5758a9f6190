"""Initial schema: meters, readings (one column per stored field), M-Bus readings, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

The reading columns come from the field table as it is when this revision runs; fields added to
the table later are added as columns by ``dsmr_backend.storage.migrate`` at every start.
"""

from collections.abc import Sequence

from alembic import op

from dsmr_backend.storage import schema

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table("meters", *schema.meters_columns())
    op.create_table("readings", *schema.readings_columns())
    op.create_index("ix_readings_timestamp_meter_id", "readings", ["timestamp", "meter_id"])
    op.create_table("mbus_readings", *schema.mbus_readings_columns())
    op.create_table("service_counters", *schema.counters_columns())


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("service_counters")
    op.drop_table("mbus_readings")
    op.drop_index("ix_readings_timestamp_meter_id", table_name="readings")
    op.drop_table("readings")
    op.drop_table("meters")
