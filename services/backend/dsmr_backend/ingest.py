"""The ingest pipeline: bus thread -> queue -> one worker that parses, stores, acks, publishes.

A message is acknowledged to the broker (PUBACK) only after the transaction holding its reading
(or its rejection count) has committed: a crash anywhere before that makes the broker redeliver
it, and the store's (meter, timestamp) key makes the redelivery harmless. The post_save
envelopes of the new readings are staged in that same transaction (the outbox), so a crash after
the commit cannot lose them either: the next start publishes what is left.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dsmr_backend.decode import Incoming, RawTelegram, decode
from dsmr_backend.errors import BadDataError, RejectedMessageError, StorageError
from dsmr_backend.outbox import Staging
from dsmr_backend.parser import TelegramError, parse
from dsmr_backend.reading import Reading
from dsmr_backend.storage.rows import MeterReading
from dsmr_backend.storage.store import ReadingStore, SaveResult
from dsmr_shared.bus import Message
from dsmr_shared.counters import Counters
from dsmr_shared.meters import meter_name

log = logging.getLogger(__name__)

Parse = Callable[[str, datetime], Reading]
"""parse(telegram, received_at): received_at stands in for a missing telegram time."""


def default_parse(text: str, received_at: datetime) -> Reading:
    """The real parser, with CRC checking on."""
    return parse(text, check_crc=True, received_at=received_at)


MAX_BATCH_AGE = 0.5  # seconds: the oldest message of a batch waits at most this long
RETRY_FIRST = 0.5
RETRY_CAP = 30.0


@dataclass(slots=True)
class Batch:
    """One worker round: what was parsed, what was refused, and what the store said."""

    accepted: list[MeterReading] = field(default_factory=list)
    rejected: list[tuple[str | None, RejectedMessageError]] = field(default_factory=list)
    result: SaveResult | None = None
    staging: Staging | None = None

    def newest_per_meter(self) -> list[MeterReading]:
        """The newest newly stored reading of each meter (what live outputs show)."""
        return newest_per_meter(self.result.new if self.result else [])


def newest_per_meter(items: Iterable[MeterReading]) -> list[MeterReading]:
    """The newest of ``items`` for each meter."""
    newest: dict[str, MeterReading] = {}
    for item in items:
        current = newest.get(item.meter)
        if current is None or item.timestamp >= current.timestamp:
            newest[item.meter] = item
    return list(newest.values())


class RejectionLog:
    """Logs refused messages clearly but at most ``burst`` lines per ``window`` seconds."""

    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def warn(self, topic: str, error: RejectedMessageError) -> None:
        """Log one rejection (or count it as suppressed inside a flood)."""
        now = time.monotonic()
        if now - self._window_start > self.window:
            if self._suppressed:
                log.warning("%d more message(s) rejected (not logged one by one)", self._suppressed)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged >= self.burst:
            self._suppressed += 1
            return
        self._logged += 1
        log.warning("rejected a message on %s: %s: %s", topic, error.kind, error.reason[:300])


class Ingest:
    """Receives raw telegrams, stores them in batches, acks after commit, hands on new readings."""

    def __init__(
        self,
        store: ReadingStore,
        on_batch: Callable[[Batch], None],
        *,
        counters: Counters,
        batch_size: int = 500,
        batch_wait: float = 0.005,
        plain_meter: str | None = None,
        parse: Parse = default_parse,
        staging: Callable[[], Staging] | None = None,
    ) -> None:
        self.store = store
        self.staging = staging  # a fresh outbox staging per save attempt (None: no post_save)
        self.parse = parse
        self.on_batch = on_batch
        self.counters = counters
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.plain_meter = plain_meter
        self._queue: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rejections = RejectionLog()

    # -- bus thread ---------------------------------------------------------------------------

    def on_envelope(self, message: Message) -> None:
        """Bus handler for raw_telegram envelopes: take over the ack and queue (never blocks)."""
        self._queue.put(Incoming(message.topic, message.payload, False, message.defer_ack()))

    def on_plain(self, message: Message) -> None:
        """Bus handler for plain-text telegrams from third-party dongles."""
        self._queue.put(Incoming(message.topic, message.payload, True, message.defer_ack()))

    def submit(self, incoming: Incoming) -> None:
        """Queue a message directly (imports and tests)."""
        self._queue.put(incoming)

    # -- worker -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Handle the messages queued by now, then stop the worker (later ones are redelivered)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def pending(self) -> int:
        """Messages received but not yet handled."""
        return self._queue.qsize()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if batch:
                self.process(batch)
        # Drain what was queued when asked to stop; a steady stream must not keep us alive.
        remaining = self._queue.qsize()
        while remaining > 0:
            batch = self._take_now(min(remaining, self.batch_size))
            if not batch:
                break
            remaining -= len(batch)
            self.process(batch)

    def _take_now(self, most: int) -> list[Incoming]:
        batch: list[Incoming] = []
        while len(batch) < most:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _take(self) -> list[Incoming]:
        """Wait for a message, then gather more until the batch is full or the stream pauses.

        Commits happen as soon as the stream pauses for ``batch_wait``: the broker sends only
        a window of unacknowledged messages, so waiting longer would only stall it.
        """
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + MAX_BATCH_AGE
        while len(batch) < self.batch_size and time.monotonic() < deadline:
            try:
                batch.append(self._queue.get(timeout=self.batch_wait))
            except queue.Empty:
                break
        return batch

    def process(self, messages: list[Incoming]) -> Batch:
        """Parse, store (retrying until the database answers), ack, and hand on one batch."""
        batch = Batch()
        for incoming in messages:
            self._parse_one(incoming, batch)
        batch.result = self._save(batch)
        if batch.result is None:
            return batch  # stopping while the database is away: the broker redelivers
        for incoming in messages:
            incoming.ack()
        self.counters.inc("stored_readings", len(batch.result.new))
        self.counters.inc("duplicate_readings", batch.result.duplicates)
        try:
            self.on_batch(batch)
        except Exception:
            self.counters.inc("output_errors")
            log.exception("publishing the outputs of a batch failed; the readings are stored")
        if batch.staging is not None:
            batch.staging.publish()  # never raises: what fails stays in the outbox
        return batch

    def _parse_one(self, incoming: Incoming, batch: Batch) -> None:
        raw: RawTelegram | None = None
        try:
            raw = decode(incoming, self.plain_meter)
            # Telegrams without a time (DSMR 2.2/3) are keyed by the envelope's send time,
            # which a redelivery repeats, so they stay idempotent too.
            fallback = raw.sent_at or datetime.now(UTC)
            reading = self._parse(raw.text, fallback)
        except RejectedMessageError as exc:
            self._reject(incoming.topic, raw.meter if raw else None, exc, batch)
            return
        meter = raw.meter or meter_name(reading.meter.equipment_id)
        stamp = reading.timestamp or fallback
        batch.accepted.append(
            MeterReading(meter, stamp, reading, raw.text, via_datalogger=not incoming.plain)
        )

    def _parse(self, text: str, received_at: datetime) -> Reading:
        try:
            return self.parse(text, received_at)
        except TelegramError as exc:
            raise RejectedMessageError("bad telegram", str(exc)) from None
        except Exception as exc:  # a parser bug must not stop ingest: isolate the telegram
            self.counters.inc("parser_errors")
            log.exception("the parser failed unexpectedly on a telegram")
            raise RejectedMessageError("bad telegram", f"unexpected {type(exc).__name__}: {exc}") from None

    def _reject(self, topic: str, meter: str | None, error: RejectedMessageError, batch: Batch) -> None:
        self.counters.inc("rejected_telegrams")
        self.counters.inc(f"rejected_{error.kind.replace(' ', '_')}")
        batch.rejected.append((meter, error))
        self._rejections.warn(topic, error)

    def _save(self, batch: Batch) -> SaveResult | None:
        """Store the batch; retry while the database is away (None: stopped meanwhile)."""
        attempt = 0
        while True:
            try:
                return self._save_once(batch)
            except StorageError as exc:
                self.counters.inc("storage_errors")
                delay = min(RETRY_CAP, RETRY_FIRST * 2**attempt)
                attempt += 1
                log.error("%s; retrying in %.1f s (messages stay unacknowledged)", exc, delay)
                if self._stop.wait(delay):
                    return None

    def _save_once(self, batch: Batch) -> SaveResult:
        batch.staging = self._new_staging()  # what an earlier, rolled-back attempt staged is gone
        try:
            return self.store.save(batch.accepted, rejected=len(batch.rejected), then=batch.staging)
        except StorageError:
            raise
        except Exception as exc:  # refused data, or a bug tripped by one reading
            if not isinstance(exc, BadDataError):
                log.exception("storing a batch failed unexpectedly; storing one by one")
            return self._save_one_by_one(batch)

    def _new_staging(self) -> Staging | None:
        return self.staging() if self.staging is not None else None

    def _save_one_by_one(self, batch: Batch) -> SaveResult:
        """A value the database refuses must not block the rest: find and reject it.

        Each reading is its own transaction with its own post_save, published at once (a retry
        of the batch would not stage it again), so in ``newest`` mode this rare path sends one
        per new reading rather than one per meter: more, never fewer.
        """
        batch.staging = None
        new: list[MeterReading] = []
        kept: list[MeterReading] = []
        for item in batch.accepted:
            staging = self._new_staging()
            try:
                new.extend(self.store.save([item], then=staging).new)
                kept.append(item)
            except StorageError:
                raise
            except Exception as exc:  # this reading cannot be stored: reject it, keep the rest
                error = RejectedMessageError("bad value", f"{type(exc).__name__}: {exc}")
                self._reject(f"meter {item.meter}", item.meter, error, batch)
                continue
            if staging is not None:
                staging.publish()
        batch.accepted = kept
        self.store.save([], rejected=len(batch.rejected))
        return SaveResult(new=new, duplicates=len(kept) - len(new))
