"""Backend fixtures: a migrated store on SQLite (tmp file) and on PostgreSQL (throwaway DB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.store import ReadingStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each dialect: a fresh SQLite file, or a throwaway PostgreSQL DB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'dsmr.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[ReadingStore]:
    """A migrated reading store on each dialect."""
    reading_store = ReadingStore(make_engine(database_url))
    reading_store.migrate()
    yield reading_store
    reading_store.engine.dispose()
