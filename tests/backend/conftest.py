"""Backend fixtures: a migrated store on SQLite (tmp file) and on PostgreSQL (throwaway DB), and
a Backend running in this process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dsmr_backend.service import Backend
from dsmr_backend.settings import BackendSettings
from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.store import ReadingStore
from tests.helpers import Mosquitto, wait_for

Runner = Callable[..., Backend]


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


@pytest.fixture
def run_backend(mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    """Start a Backend in a thread with the given DSMR_* settings; stopped afterwards."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(**env: str) -> Backend:
        for name, value in {**mosquitto.env(), **env}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DSMR_BACKEND_DATA_DIR", str(tmp_path / "data"))
        backend = Backend(BackendSettings())
        stop = threading.Event()
        thread = threading.Thread(target=backend.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))
        assert wait_for(lambda: backend.bus.connected, 20, message="backend connected")
        return backend

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(30)
