"""Alembic environment: runs on the connection dsmr_backend.storage.migrate hands over."""

from alembic import context
from sqlalchemy import Connection

from dsmr_backend.storage.tables import metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending revisions inside one transaction on ``connection``."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER is limited
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        # The `alembic` command line (e.g. `alembic revision --autogenerate`): build an engine.
        from dsmr_backend.storage.engine import make_engine  # noqa: PLC0415

        url = context.config.get_main_option("sqlalchemy.url") or ""
        with make_engine(url).connect() as conn:
            run_migrations(conn)
            conn.commit()
        return
    run_migrations(connection)


_main()
