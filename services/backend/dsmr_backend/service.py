"""The backend service: wires the bus, storage, ingest, outputs, discovery and the loop."""

import json
import logging
import threading
import time
from functools import partial

from dsmr_backend.discovery import Device, Discovery
from dsmr_backend.errors import StorageError
from dsmr_backend.ingest import Batch, Ingest
from dsmr_backend.loop import Loop
from dsmr_backend.outbox import Outbox
from dsmr_backend.outputs import MeterStats, Outputs
from dsmr_backend.period_outputs import PeriodOutputs
from dsmr_backend.record_signals import envelopes as record_envelopes
from dsmr_backend.record_signals import reading_envelopes
from dsmr_backend.settings import BackendSettings
from dsmr_backend.signals import post_save
from dsmr_backend.statistics_task import StatisticsTask
from dsmr_backend.storage.engine import describe, make_engine
from dsmr_backend.storage.rows import MeterReading
from dsmr_backend.storage.statistics_store import StatisticsStore
from dsmr_backend.storage.store import ReadingStore
from dsmr_shared import signals
from dsmr_shared.bus import Bus, Message
from dsmr_shared.counters import Counters
from dsmr_shared.topics import RAW_TELEGRAM, signal_topic

log = logging.getLogger(__name__)

SERVICE = "backend"
STATISTICS_BUDGET = 1.0
"""Seconds of statistics work per loop iteration: a long catch-up goes on in the next ones."""
STATISTICS_YIELD_MAX = 15.0
"""While a burst is being stored, statistics wait up to this many seconds: ingest comes first."""
OUTPUT_BACKLOG = 500
"""Most QoS 1 publishes (post_save, retained outputs) left unacknowledged before ingest or the
statistics task goes on: paho queues what the broker has not acknowledged without limit, and in a
catch-up the backend stores faster than the broker acknowledges (its RSS grew ~3.5 KiB a reading)."""
OUTPUT_WAIT = 10.0
"""Longest wait for that backlog to drain (offline, nothing drains: no wait at all)."""


def client_settings(settings: BackendSettings) -> BackendSettings:
    """Give each named replica its own stable client id (persistent sessions are keyed by it).

    No host name in it: a recreated container gets a new host name, and a new client id would
    abandon the session holding the telegrams queued while it was away.
    """
    if settings.mqtt_client_id:
        return settings
    client_id = f"dsmr-backend-{settings.backend_name}"[:64]
    return settings.model_copy(update={"mqtt_client_id": client_id})


class Backend:
    """One backend replica."""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = client_settings(settings)
        s = self.settings
        self.counters = Counters()
        self.bus = Bus(s.mqtt_config(), SERVICE, persistent=True, share_group=s.backend_share_group)
        self.store = ReadingStore(make_engine(s.database_url))
        self.outbox = Outbox(self.store.engine, self.counters, [post_save])
        self.outputs = Outputs(self._publish, s.topic_prefix)
        self.discovery = (
            Discovery(self._publish, s.topic_prefix, s.backend_ha_prefix, currency=s.backend_currency)
            if s.backend_ha_discovery
            else None
        )
        self.periods = PeriodOutputs(self._publish, s.topic_prefix)
        self.statistics = (
            StatisticsTask(
                StatisticsStore(self.store.engine),
                prices=s.price_table(),
                retention_days=s.backend_retention_days,
                staging=partial(self.outbox.staging, partial(record_envelopes, mode=s.backend_post_save)),
            )
            if s.backend_statistics
            else None
        )
        self._periods_due = True  # publish every meter's totals in the next round (start, reconnect)
        self.ingest = Ingest(
            self.store,
            self._after_batch,
            counters=self.counters,
            batch_size=s.backend_batch_size,
            batch_wait=s.backend_batch_wait,
            plain_meter=s.backend_plain_meter,
            staging=partial(self.outbox.staging, partial(reading_envelopes, mode=s.backend_post_save)),
        )
        self.loop = Loop(s.backend_name, s.backend_loop_interval, self.counters)
        self.loop.add_task(self._stats_task)
        self.loop.add_task(self._statistics_task)
        self.loop.add_task(self._outbox_task)
        self._stats_due = 0.0
        self._statistics_ran = 0.0
        self.default_meter = s.backend_default_meter
        self.rejected_total = 0
        self._latest: dict[str, MeterReading] = {}  # newest published reading per meter
        self._meters_lock = threading.Lock()  # the worker writes, the network thread reads

    # -- life cycle ---------------------------------------------------------------------------

    def prepare_storage(self, stop: threading.Event) -> bool:
        """Migrate the database, retrying while it is unreachable; False when stopped first."""
        delay = 0.5
        while not stop.is_set():
            try:
                self.store.migrate()
                self.rejected_total = self.store.counter("rejected_telegrams")
                self.default_meter = self.default_meter or self.store.first_meter()
                return True
            except StorageError as exc:
                log.error("%s; retrying in %.1f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
        return False

    def start(self) -> None:
        """Subscribe, start the worker and connect (storage must be prepared)."""
        s = self.settings
        signals.use_bus(self.bus)
        self._resend_outbox()  # queued in paho now, sent first once connected
        self.bus.add_connect_listener(self._on_connect)
        raw = signal_topic(s.topic_prefix, RAW_TELEGRAM, None)
        self.bus.subscribe(raw, self.ingest.on_envelope, qos=1, shared=True)
        if s.backend_plain_topic:
            self.bus.subscribe(s.backend_plain_topic, self.ingest.on_plain, qos=1, shared=True)
        if self.discovery is not None:
            self.bus.subscribe(f"{s.backend_ha_prefix}/status", self._on_ha_status, qos=1)
        self.ingest.start()
        self.bus.start()
        log.info(
            "backend %s started: database %s, telegrams from %s%s%s",
            s.backend_name,
            describe(self.store.engine),
            raw,
            f" and {s.backend_plain_topic}" if s.backend_plain_topic else "",
            f" (shared group {s.backend_share_group})" if s.backend_share_group else "",
        )

    def run(self, stop: threading.Event) -> int:
        """Prepare, start, loop until ``stop``, then shut down cleanly; return an exit code."""
        if not self.prepare_storage(stop):
            return 0
        self.start()
        try:
            self.loop.run(stop)
        finally:
            self.close()
        return 0

    def close(self) -> None:
        """Finish queued messages, say offline, disconnect, release the database."""
        self.ingest.stop()
        self.bus.close()  # its last publish is acknowledged after the ones before it
        self._outbox_task(0)
        signals.use_bus(None)
        self.store.engine.dispose()
        log.info("backend %s stopped; counters: %s", self.settings.backend_name, self.stats())

    def stats(self) -> dict[str, int]:
        """Every counter of this replica (its own and its bus's)."""
        return {**self.bus.counters.snapshot(), **self.counters.snapshot()}

    def _stats_task(self, _iteration: int) -> None:
        """Every DSMR_BACKEND_STATS_SECONDS: a log line and retained JSON with every counter."""
        now = time.monotonic()
        if now < self._stats_due:
            return
        self._stats_due = now + self.settings.backend_stats_seconds
        stats = {**self.stats(), "pending": self.ingest.pending(), "outbox_pending": self.outbox.pending()}
        log.info("stats: %s", " ".join(f"{k}={v}" for k, v in sorted(stats.items())))
        if self.bus.connected:
            name = self.settings.backend_name  # per replica: several may share one broker
            topic = f"{self.settings.topic_prefix}/service/{SERVICE}/stats/{name}"
            self.bus.publish(topic, json.dumps(stats, sort_keys=True), qos=0, retain=True)

    def _resend_outbox(self) -> None:
        """Publish the signals a crash left between a commit and their PUBACK (same envelope ids)."""
        try:
            self.outbox.resend()
        except StorageError as exc:  # just migrated, so rare; the rows wait for the next start
            log.error("%s; the rows are resent at the next start", exc)

    def _outbox_task(self, _iteration: int) -> None:
        """Delete the outbox rows the broker acknowledged (never waits for the broker)."""
        try:
            self.outbox.sweep()
        except StorageError as exc:  # the acknowledged rows stay tracked for the next sweep
            self.counters.inc("storage_errors")
            log.warning("%s", exc)

    def _statistics_task(self, _iteration: int) -> None:
        """Consumption, statistics and costs; post_save and the consumption topics for what is new."""
        if self.statistics is None:
            return
        now = time.monotonic()
        if self.ingest.pending() and now - self._statistics_ran < STATISTICS_YIELD_MAX:
            return  # catching up: statistics reread the readings, so let the store fill first
        self._statistics_ran = now
        saved, _more = self.statistics.run(budget_s=STATISTICS_BUDGET)  # post_save went with each commit
        due, self._periods_due = self._periods_due, False
        changed = {item.meter for item in saved}
        for meter, meter_id in self.statistics.store.meters().items():
            if due or meter in changed:
                live = self.statistics.live(meter, meter_id)
                self.periods.publish(live, default=meter == (self.default_meter or meter))
        self._hold_back()
        self.statistics.retention()

    # -- callbacks ----------------------------------------------------------------------------

    def _publish(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        self.bus.publish(topic, payload, qos=qos, retain=retain)

    def known_meters(self) -> list[str]:
        """The meters this replica has stored readings of since it started."""
        with self._meters_lock:
            return sorted(self._latest)

    def _on_connect(self) -> None:
        """After every (re)connect: the broker may have lost retained state; send it again."""
        self.outputs.forget()
        self.periods.forget()
        self._periods_due = True
        with self._meters_lock:
            latest = list(self._latest.values())
        for item in latest:
            self._publish_outputs(item, live=False)
        self.outputs.publish_rejected(self.known_meters(), self.rejected_total)
        if self.discovery is not None:
            self.discovery.republish()

    def _on_ha_status(self, message: Message) -> None:
        if message.payload.strip().lower() == b"online" and self.discovery is not None:
            count = self.discovery.republish()
            log.info("Home Assistant is online: re-sent discovery for %d meter(s)", count)

    def _after_batch(self, batch: Batch) -> None:
        """Runs on the worker after a commit: outputs, discovery and post_save."""
        self.rejected_total += len(batch.rejected)
        for item in batch.newest_per_meter():
            self._publish_item(item)
        if batch.rejected:
            self.outputs.publish_rejected(self.known_meters(), self.rejected_total)
        self._hold_back()

    def _hold_back(self) -> None:
        """Let the broker acknowledge what was published before producing more (bounded memory)."""
        if not self.bus.connected or self.bus.unacknowledged() <= OUTPUT_BACKLOG:
            return
        self.counters.inc("output_waits")
        if not self.bus.wait_unacknowledged(OUTPUT_BACKLOG, OUTPUT_WAIT):
            self.counters.inc("output_wait_timeouts")

    def _publish_item(self, item: MeterReading) -> None:
        if self.default_meter is None:
            self.default_meter = item.meter
            log.info("default meter (%s/reading/...): %s", self.settings.topic_prefix, item.meter)
        with self._meters_lock:
            previous = self._latest.get(item.meter)
            if previous is not None and item.timestamp < previous.timestamp:
                return  # a late, older telegram is stored but must not roll the live state back
            self._latest[item.meter] = item
        if previous is None:
            self._announce(item)
        self._publish_outputs(item)

    def _publish_outputs(self, item: MeterReading, *, live: bool = True) -> None:
        stats = MeterStats(self.rejected_total, item.telegram)
        default = item.meter == self.default_meter
        self.outputs.publish_reading(item, stats, default=default, live=live)

    def _announce(self, item: MeterReading) -> None:
        if self.discovery is None:
            return
        identity = item.reading.meter
        device = Device(item.meter, identity.header, identity.equipment_id, item.via_datalogger)
        self.discovery.announce(device)
