"""All tables of the backend on one MetaData: what migrations and the schema test compare.

A feature with its own tables (consumption, statistics, costs) defines them on
``dsmr_backend.storage.schema.metadata`` in its own module and imports that module here, so
Alembic's autogenerate and ``test_migrated_schema_matches_the_models`` see them.
"""

from dsmr_backend.storage import outbox, statistics_schema
from dsmr_backend.storage.schema import metadata

__all__ = ["metadata", "outbox", "statistics_schema"]
