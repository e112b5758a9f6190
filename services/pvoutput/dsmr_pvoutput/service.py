"""The PVOutput service: readings in over MQTT, statuses into the outbox, uploads out over HTTP."""

import logging
import threading
from collections.abc import Callable
from typing import Any

from dsmr_pvoutput.client import PVOutputClient
from dsmr_pvoutput.intervals import FeedResult, IntervalTracker
from dsmr_pvoutput.outbox import Outbox, wall_clock
from dsmr_pvoutput.readings import PayloadError, parse_reading
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_pvoutput.signals import pvoutput_upload
from dsmr_pvoutput.status import local_stamp
from dsmr_pvoutput.uploader import Uploader
from dsmr_shared import signals
from dsmr_shared.bus import Bus, Message
from dsmr_shared.counters import Counters
from dsmr_shared.topics import topic_safe

log = logging.getLogger(__name__)

SERVICE = "pvoutput"
FUTURE_TOLERANCE = 3600.0
"""Seconds a reading may lie ahead of the wall clock (clock skew between hosts)."""


def reading_topic(settings: PVOutputSettings) -> str:
    """``<prefix>/json`` for the default meter, ``<prefix>/meter/<meter>/json`` for a chosen one."""
    prefix = settings.topic_prefix
    if settings.pvoutput_meter is None:
        return f"{prefix}/json"
    return f"{prefix}/meter/{topic_safe(settings.pvoutput_meter)}/json"


class PVOutputService:
    """Wires the bus, the interval tracker, the outbox and the uploader together."""

    def __init__(
        self,
        settings: PVOutputSettings,
        *,
        clock: Callable[[], float] = wall_clock,
        bus: Bus | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.bus = bus or Bus(settings.mqtt_config(), SERVICE, persistent=True)
        self.counters = Counters()
        self.outbox: Outbox | None = None
        self.tracker: IntervalTracker | None = None
        self.uploader: Uploader | None = None
        self._client: PVOutputClient | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ingest_lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the outbox, subscribe, start uploading; idle when key or system id is missing."""
        if not self.settings.uploads_enabled:
            log.warning(
                "PVOutput uploads are off: set both DSMR_PVOUTPUT_API_KEY and "
                "DSMR_PVOUTPUT_SYSTEM_ID to upload; the service stays idle until restarted with them"
            )
            self.bus.start()
            return
        s = self.settings
        assert s.pvoutput_api_key is not None and s.pvoutput_system_id is not None
        self.outbox = Outbox(s.pvoutput_outbox)
        self.tracker = self._load_tracker(self.outbox)
        self._client = PVOutputClient(
            s.pvoutput_api_key.get_secret_value(), s.pvoutput_system_id, s.pvoutput_timeout
        )
        self.uploader = Uploader(
            s, self.outbox, self._client, self.counters, clock=self.clock, notify=self._notify
        )
        signals.use_bus(self.bus)
        self.bus.subscribe(reading_topic(s), self._on_message, qos=1)
        self._thread = threading.Thread(
            target=self.uploader.run, args=(self._stop,), name="pvoutput-upload", daemon=True
        )
        self._thread.start()
        self.bus.start()
        log.info(
            "uploading %s to PVOutput system %s every %d minutes (outbox %s: %s)",
            reading_topic(s),
            s.pvoutput_system_id,
            s.pvoutput_interval,
            s.pvoutput_outbox,
            self.outbox.counts() or "empty",
        )

    def stop(self) -> None:
        """Stop uploading, leave the broker, close the outbox."""
        self._stop.set()
        if self.uploader is not None:
            self.uploader.wake.set()
        if self._thread is not None:
            # A POST in flight ends within the HTTP timeout; its status stays pending if cut off.
            self._thread.join(self.settings.pvoutput_timeout + 2)
            if self._thread.is_alive():
                log.warning("an upload was still running at shutdown; it is retried next start")
        self.bus.close()
        if signals.current_bus() is self.bus:
            signals.use_bus(None)
        with self._ingest_lock:
            if self.outbox is not None:
                self.outbox.close()
                self.outbox = None
        if self._client is not None:
            self._client.close()

    def _load_tracker(self, outbox: Outbox) -> IntervalTracker:
        s = self.settings
        return IntervalTracker(
            s.pvoutput_interval,
            s.pvoutput_upload_delay,
            s.zone,
            outbox.load_baselines(),
            outbox.load_tracker(),
        )

    # -- ingest (bus network thread: short work only) --------------------------------------

    def _on_message(self, message: Message) -> None:
        ack = message.defer_ack()
        try:
            reading = parse_reading(message.payload)
            if reading.ts > self.clock() + FUTURE_TOLERANCE:
                # One reading from a meter with a wrong clock would close every interval up to
                # its time and turn all correct readings after it into late ones.
                raise PayloadError("timestamp lies more than an hour in the future")
        except PayloadError as exc:
            self.counters.inc("invalid_payloads")
            log.warning("ignored a payload on %s: %s", message.topic, exc)
            ack()
            return
        self.counters.inc("readings")
        with self._ingest_lock:
            if self.outbox is None or self.tracker is None:
                return  # stopping: not acked, so the broker keeps it for the next run
            result = self.tracker.feed(reading)
            try:
                added = self.outbox.record(result, self.tracker.state, self.clock())
            except Exception:
                # Not stored, not acked: rewind to what the outbox holds; the broker redelivers.
                self.tracker = self._load_tracker(self.outbox)
                raise
        ack()
        self._report(result, added)

    def _report(self, result: FeedResult, added: int) -> None:
        zone = self.settings.zone
        if result.late:
            self.counters.inc("late_readings")
            log.info("ignored a reading for an interval that was already closed")
        for gap in result.gaps:
            self.counters.inc("intervals_without_data", gap.count)
            first = " ".join(local_stamp(gap.first_end, zone))
            last = " ".join(local_stamp(gap.last_end, zone))
            log.warning(
                "no status for %d interval(s) ending %s..%s: no reading arrived inside them",
                gap.count,
                first,
                last,
            )
        if added and self.uploader is not None:
            self.counters.inc("statuses_created", added)
            self.uploader.wake.set()

    def _notify(self, form: dict[str, Any]) -> None:
        assert self.settings.pvoutput_system_id is not None
        pvoutput_upload.send(sender=self.settings.pvoutput_system_id, data=form)
