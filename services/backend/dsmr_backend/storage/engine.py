"""Engine factory: a SQLite file (WAL, tuned pragmas) or PostgreSQL through psycopg 3."""

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from dsmr_backend.errors import StorageError

log = logging.getLogger(__name__)

# WAL lets readers (dashboards, a second replica) work while the backend writes;
# synchronous=NORMAL keeps every commit across a process crash (SIGKILL) and loses at most
# the last commits on a power cut, which the broker redelivers (ack happens after commit).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA temp_store=MEMORY",
    # 4 MB of page cache per connection (SQLite's default is 2 MB): at 16 MB, each of the
    # backend's connections grew its RSS by that much over a day of readings.
    "PRAGMA cache_size=-4000",
)
BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite write waits for another writer (a second replica, a backup) to finish."""


def normalise_url(url: str) -> URL:
    """Parse ``url``; plain ``postgresql://`` / ``postgres://`` get the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises several types for bad URLs
        raise StorageError(f"bad database URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StorageError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")
    return parsed


def _pragma_setter(busy_timeout_ms: int) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={int(busy_timeout_ms)}"):
                cursor.execute(pragma)
        finally:
            cursor.close()

    return set_pragmas


def make_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """Create the engine for ``url``, creating a SQLite file's folder when needed."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        event.listen(engine, "connect", _pragma_setter(busy_timeout_ms))
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def describe(engine: Engine) -> str:
    """Return the engine's URL with the password hidden, for logs."""
    return engine.url.render_as_string(hide_password=True)
