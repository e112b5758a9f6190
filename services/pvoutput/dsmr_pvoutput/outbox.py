"""The persistent outbox: every interval's status waits here (SQLite) until PVOutput took it.

It also keeps each day's baseline reading and the interval tracker's state, so a restart
resumes exactly where the service stopped.
"""

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dsmr_pvoutput.intervals import FeedResult, TrackerState
from dsmr_pvoutput.readings import Reading
from dsmr_pvoutput.status import Status

PENDING = "pending"
SENT = "sent"
REJECTED = "rejected"
EXPIRED = "expired"

SCHEMA = """
CREATE TABLE IF NOT EXISTS status (
    end_ts     INTEGER PRIMARY KEY,
    d          TEXT    NOT NULL,
    t          TEXT    NOT NULL,
    v3         INTEGER NOT NULL,
    v4         INTEGER NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'pending',
    single     INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at REAL    NOT NULL,
    done_at    REAL,
    note       TEXT
);
CREATE INDEX IF NOT EXISTS status_state ON status (state, end_ts);
CREATE TABLE IF NOT EXISTS baseline (
    day          TEXT PRIMARY KEY,
    ts           REAL    NOT NULL,
    delivered_wh INTEGER NOT NULL,
    power_w      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _status(row: tuple[int, str, str, int, int]) -> Status:
    return Status(end_ts=row[0], d=row[1], t=row[2], v3=row[3], v4=row[4])


class Outbox:
    """SQLite-backed store, safe to share between the ingest and upload threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps the file consistent after a crash; only the last
        # transactions may be lost on power failure, and the broker redelivers those readings.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- ingest side ------------------------------------------------------------------------

    def load_baselines(self) -> dict[str, Reading]:
        """Every stored day baseline."""
        with self._lock:
            rows = self._db.execute("SELECT day, ts, delivered_wh, power_w FROM baseline")
            return {day: Reading(ts, wh, w) for day, ts, wh, w in rows.fetchall()}

    def load_tracker(self) -> TrackerState:
        """The tracker state saved by the last :meth:`record` (empty on a new outbox)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = 'tracker'").fetchone()
        if row is None:
            return TrackerState()
        data = json.loads(row[0])
        return TrackerState(next_end=data["next_end"], buffer=[Reading.from_json(r) for r in data["buffer"]])

    def record(self, result: FeedResult, state: TrackerState, now: float) -> int:
        """Store one reading's effects atomically; return how many statuses were new."""
        tracker = json.dumps({"next_end": state.next_end, "buffer": [r.to_json() for r in state.buffer]})
        with self._tx() as db:
            if result.baseline is not None:
                day, reading = result.baseline
                db.execute(
                    "INSERT OR REPLACE INTO baseline VALUES (?, ?, ?, ?)",
                    (day, reading.ts, reading.delivered_wh, reading.power_w),
                )
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO status (end_ts, d, t, v3, v4, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(s.end_ts, s.d, s.t, s.v3, s.v4, now) for s in result.statuses],
            )
            added = db.total_changes - before
            db.execute("INSERT OR REPLACE INTO kv VALUES ('tracker', ?)", (tracker,))
        return added

    # -- upload side ------------------------------------------------------------------------

    def newest(self) -> tuple[int, str] | None:
        """(end_ts, state) of the newest status of all, or None when empty."""
        with self._lock:
            row = self._db.execute("SELECT end_ts, state FROM status ORDER BY end_ts DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1])

    def get(self, end_ts: int) -> Status | None:
        """One status by its end."""
        with self._lock:
            row = self._db.execute(
                "SELECT end_ts, d, t, v3, v4 FROM status WHERE end_ts = ?", (end_ts,)
            ).fetchone()
        return None if row is None else _status(row)

    def backlog(self, limit: int, *, exclude: int | None = None) -> list[Status]:
        """Oldest pending statuses of one local date, for one batch (never ``exclude``)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT end_ts, d, t, v3, v4 FROM status WHERE state = ? AND single = 0 AND end_ts != ? "
                "ORDER BY end_ts LIMIT ?",
                (PENDING, -1 if exclude is None else exclude, limit),
            ).fetchall()
        statuses = [_status(r) for r in rows]
        # PVOutput wants every net status of one batch on the same date.
        return [s for s in statuses if s.d == statuses[0].d] if statuses else []

    def next_single(self) -> Status | None:
        """The oldest pending status that must go out on its own (its batch was refused)."""
        with self._lock:
            row = self._db.execute(
                "SELECT end_ts, d, t, v3, v4 FROM status WHERE state = ? AND single = 1 "
                "ORDER BY end_ts LIMIT 1",
                (PENDING,),
            ).fetchone()
        return None if row is None else _status(row)

    def mark(self, end_ts: list[int], state: str, now: float, note: str | None = None) -> None:
        """Set the state of some statuses (and count the attempt)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE status SET state = ?, done_at = ?, note = ?, attempts = attempts + 1 "
                "WHERE end_ts = ?",
                [(state, now, note, e) for e in end_ts],
            )

    def mark_single(self, end_ts: list[int]) -> None:
        """Send these statuses one by one from now on."""
        with self._tx() as db:
            db.executemany(
                "UPDATE status SET single = 1, attempts = attempts + 1 WHERE end_ts = ?",
                [(e,) for e in end_ts],
            )

    def expire(self, cutoff: float, now: float) -> list[Status]:
        """Give up pending statuses that end before ``cutoff``; forget old finished ones."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT end_ts, d, t, v3, v4 FROM status WHERE state = ? AND end_ts < ? ORDER BY end_ts",
                (PENDING, cutoff),
            ).fetchall()
            db.execute(
                "UPDATE status SET state = ?, done_at = ?, note = 'older than the backfill window' "
                "WHERE state = ? AND end_ts < ?",
                (EXPIRED, now, PENDING, cutoff),
            )
            # Finished rows are kept a while for inspection; the tracker never redoes them.
            db.execute("DELETE FROM status WHERE state != ? AND end_ts < ?", (PENDING, cutoff))
            db.execute("DELETE FROM baseline WHERE ts < ?", (cutoff - 86400,))
        return [_status(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of statuses per state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM status GROUP BY state")
            return {str(state): int(n) for state, n in rows.fetchall()}

    def all_statuses(self, state: str | None = None) -> list[Status]:
        """Every stored status (optionally of one state), oldest first."""
        query = "SELECT end_ts, d, t, v3, v4 FROM status"
        args: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            args = (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY end_ts", args).fetchall()
        return [_status(r) for r in rows]


def wall_clock() -> float:
    """Seconds since the epoch; the default clock of the outbox's users."""
    return time.time()
