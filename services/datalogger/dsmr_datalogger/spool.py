"""A bounded, ordered disk queue of telegrams waiting for the broker (SQLite in WAL mode).

Policy when full: the OLDEST telegrams are dropped to make room, logged and counted. A meter
user cares most about the newest readings; a spool that refused new telegrams would freeze the
dashboards at the moment it filled up.
"""

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    telegram BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class SpoolItem:
    """One spooled message: its order, its sender and the exact payload to publish."""

    seq: int
    sender: str
    payload: bytes


class Spool:
    """Telegrams in arrival order; ``put`` never waits on the broker, ``delete`` after the ack."""

    def __init__(self, path: Path, max_bytes: int, counters: Counters | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.counters = counters or Counters()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only a power cut may lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self._changed = threading.Condition()
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(telegram)), 0) FROM spool"
        ).fetchone()
        self._count: int = count
        self._bytes: int = size
        self._drop_logged_at = 0

    def __len__(self) -> int:
        with self._changed:
            return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes of payload currently spooled."""
        with self._changed:
            return self._bytes

    def put(self, sender: str, payload: bytes) -> int:
        """Append a payload (dropping the oldest when full) and return its sequence number."""
        with self._changed:
            dropped = self._make_room(len(payload))
            cursor = self._db.execute("INSERT INTO spool (sender, telegram) VALUES (?, ?)", (sender, payload))
            self._count += 1
            self._bytes += len(payload)
            self._changed.notify_all()
        if dropped:
            self._log_drop(dropped)
        seq = cursor.lastrowid
        assert seq is not None  # an INSERT always has one
        return seq

    def _make_room(self, needed: int) -> int:
        dropped = 0
        while self._count and self._bytes + needed > self.max_bytes:
            (length,) = self._db.execute(
                "DELETE FROM spool WHERE seq = (SELECT MIN(seq) FROM spool) RETURNING LENGTH(telegram)"
            ).fetchone()
            self._count -= 1
            self._bytes -= length
            dropped += 1
        return dropped

    def _log_drop(self, dropped: int) -> None:
        total = self.counters.inc("spool_dropped", dropped)
        # Log the first drop and then every 1000th, not every telegram of a long outage.
        if self._drop_logged_at == 0 or total - self._drop_logged_at >= 1000:
            self._drop_logged_at = total
            log.warning(
                "spool full (%d bytes max): dropped the oldest telegram(s); %d dropped so far, %d waiting",
                self.max_bytes,
                total,
                len(self),
            )

    def oldest(self, limit: int = 1) -> list[SpoolItem]:
        """Return up to ``limit`` items, oldest first, without removing them."""
        with self._changed:
            rows = self._db.execute(
                "SELECT seq, sender, telegram FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpoolItem(seq, sender, bytes(payload)) for seq, sender, payload in rows]

    def wait_oldest(self, timeout: float) -> SpoolItem | None:
        """Return the oldest item, waiting up to ``timeout`` seconds for one to arrive."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count > 0, timeout):
                return None
        items = self.oldest(1)
        return items[0] if items else None

    def delete(self, seq: int) -> bool:
        """Remove an item once the broker acknowledged it; False when it was dropped already."""
        with self._changed:
            row = self._db.execute(
                "DELETE FROM spool WHERE seq = ? RETURNING LENGTH(telegram)", (seq,)
            ).fetchone()
            if row is None:
                return False
            self._count -= 1
            self._bytes -= row[0]
            self._changed.notify_all()
            return True

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every item is deleted; True when the spool is empty."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)

    def close(self) -> None:
        """Close the database (what is left stays on disk for the next start)."""
        with self._changed:
            self._db.close()
