"""Signal outbox: post_save envelopes committed with their records, kept until the broker has them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

from dsmr_backend.storage import outbox

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table (SQLite AUTOINCREMENT: ids are never reused)."""
    op.create_table("signal_outbox", *outbox.outbox_columns(), sqlite_autoincrement=True)


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("signal_outbox")
