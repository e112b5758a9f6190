"""The outbox relay: signal envelopes commit with the records they announce, and go out after.

A transaction that stores records also stores their post_save envelopes (``storage/outbox.py``),
so a crash between the commit and the publish no longer loses the event. After the commit the
envelopes are published at QoS 1; a row is deleted once the broker acknowledged it (``sweep``, on
the backend loop, so ingest never waits for the broker). At start, ``resend`` publishes what a
crash left behind, oldest first and byte for byte: the envelope keeps the id it was first sent
with, and dsmr_shared receivers skip an id they already ran.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from dsmr_backend.errors import StorageError
from dsmr_backend.storage import outbox as rows
from dsmr_shared.bus import PublishHandle
from dsmr_shared.counters import Counters
from dsmr_shared.envelope import Envelope
from dsmr_shared.signals import Signal

log = logging.getLogger(__name__)

Choose = Callable[[Sequence[Any]], list[Envelope]]
"""Which envelopes the records one transaction stored get (the post_save mode decides)."""


@dataclass(frozen=True, slots=True)
class Staged:
    """An envelope written to the outbox in a transaction, to publish once that committed."""

    row_id: int
    signal: Signal
    envelope: Envelope
    payload: bytes


class Outbox:
    """Stages envelopes in the caller's transaction, publishes them after it, forgets them on PUBACK."""

    def __init__(self, engine: Engine, counters: Counters, signals: Iterable[Signal]) -> None:
        self.engine = engine
        self.counters = counters
        self._signals = {signal.name: signal for signal in signals}
        self._in_flight: dict[int, PublishHandle] = {}  # row id -> its publish, until settled
        self._lock = threading.Lock()  # the ingest worker and the loop publish, the loop sweeps

    def staging(self, choose: Choose) -> "Staging":
        """A fresh staging for one unit of work (a batch, a statistics save)."""
        return Staging(self, choose)

    def stage(self, connection: Connection, envelopes: Sequence[Envelope]) -> list[Staged]:
        """Write ``envelopes`` in the caller's transaction; publish the result after it committed."""
        signals = [self._signals[e.signal] for e in envelopes]  # only signals this relay can resend
        payloads = [e.to_json() for e in envelopes]
        ids = rows.add(
            connection, [(e.signal, e.sender, p) for e, p in zip(envelopes, payloads, strict=True)]
        )
        return [Staged(*item) for item in zip(ids, signals, envelopes, payloads, strict=True)]

    def publish(self, staged: Iterable[Staged]) -> None:
        """Publish committed envelopes at their signal's QoS; one that fails waits for the next start."""
        for item in staged:
            self._publish(item.row_id, item.signal, item.envelope, item.payload)

    def resend(self) -> int:
        """Publish every row left over (a crash after a commit), oldest first; return how many."""
        try:
            with self.engine.connect() as connection:
                left = rows.oldest(connection)
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot read the signal outbox: {exc}") from exc
        resent = 0
        for row in left:
            signal = self._signals.get(row.signal)
            if signal is None:  # stored by a version that had this signal: keep it for one that does
                log.warning("outbox row %d is for unknown signal %s; left in place", row.id, row.signal)
                continue
            resent += self._publish(row.id, signal, Envelope.parse(row.payload), row.payload)
        if resent:
            self.counters.inc("outbox_resent", resent)
            log.info("resent %d signal(s) left in the outbox by the previous run", resent)
        return resent

    def sweep(self) -> int:
        """Delete the rows whose publish the broker acknowledged; return how many went."""
        done = self._settled()
        if not done:
            return 0
        try:
            with self.engine.begin() as connection:
                rows.remove(connection, done)
        except SQLAlchemyError as exc:  # still tracked: the next sweep tries again
            raise StorageError(f"cannot clear {len(done)} sent signal(s) from the outbox: {exc}") from exc
        with self._lock:
            for row_id in done:
                self._in_flight.pop(row_id, None)
        return len(done)

    def pending(self) -> int:
        """Envelopes published and not yet acknowledged by the broker."""
        with self._lock:
            return len(self._in_flight)

    def _publish(self, row_id: int, signal: Signal, envelope: Envelope, payload: bytes) -> bool:
        try:
            handle = signal.publish(envelope, payload)
        except Exception:  # the row stays: the next start sends it
            self.counters.inc("outbox_errors")
            log.exception(
                "publishing %s (outbox row %d) failed; it is resent at the next start", signal.name, row_id
            )
            return False
        with self._lock:
            self._in_flight[row_id] = handle
        return True

    def _settled(self) -> list[int]:
        """Ids the broker acknowledged; refused ones stop being tracked and wait for the next start."""
        with self._lock:
            outcomes = [(row_id, handle.poll()) for row_id, handle in self._in_flight.items()]
            refused = [row_id for row_id, outcome in outcomes if outcome is False]
            for row_id in refused:
                del self._in_flight[row_id]
        if refused:
            self.counters.inc("outbox_refused", len(refused))
            log.error("the broker refused %d signal(s); kept in the outbox for the next start", len(refused))
        return [row_id for row_id, outcome in outcomes if outcome is True]


class Staging:
    """One unit of work's envelopes: staged inside its transaction(s), published after the commit.

    The store calls it as its in-transaction hook with the records that were new. Make one per
    attempt: a staging whose transaction rolled back is dropped with it.
    """

    def __init__(self, outbox: Outbox, choose: Choose) -> None:
        self.outbox = outbox
        self.choose = choose
        self.staged: list[Staged] = []

    def __call__(self, connection: Connection, stored: Sequence[Any]) -> None:
        """Stage the envelopes ``choose`` picks for what the transaction stored."""
        try:
            self.staged += self.outbox.stage(connection, self.choose(stored))
        except SQLAlchemyError:
            raise  # the database's: the whole transaction fails and is retried
        except Exception:  # a bug building an event must not refuse the records it announces
            self.outbox.counters.inc("outbox_errors")
            log.exception("building the signals of %d stored record(s) failed; stored without", len(stored))

    def publish(self) -> None:
        """After the commit: hand the staged envelopes to the broker."""
        staged, self.staged = self.staged, []
        self.outbox.publish(staged)
