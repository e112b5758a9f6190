"""What happens to each framed telegram: good ones into the spool, rejected ones counted."""

import logging
import sqlite3

from dsmr_datalogger.meter import meter_name_of
from dsmr_datalogger.spool import Spool
from dsmr_shared.bus import Bus
from dsmr_shared.counters import Counters
from dsmr_shared.framing import Frame
from dsmr_shared.topics import RAW_TELEGRAM, signal_topic
from dsmr_shared.wire import encode_envelope

log = logging.getLogger(__name__)

# Rejection reasons of dsmr_shared.framing, grouped for the counters (first match wins).
REJECT_KINDS = (("CRC", "crc"), ("longer than", "size"))
DEFAULT_KIND = "framing"


def reject_kind(reason: str) -> str:
    """Map a framing error to its counter suffix: crc, size or framing."""
    return next((kind for marker, kind in REJECT_KINDS if marker in reason), DEFAULT_KIND)


def raw_telegram_envelope(sender: str, telegram: bytes) -> bytes:
    """The envelope raw_telegram.send(sender, data=...) would publish, with its one id."""
    return encode_envelope(RAW_TELEGRAM, sender, {"data": telegram.decode("latin-1")})


class TelegramSink:
    """Spools every good telegram (exactly one envelope each); counts and logs the rejected."""

    def __init__(self, spool: Spool, counters: Counters, bus: Bus, meter: str | None) -> None:
        self.spool = spool
        self.counters = counters
        self.bus = bus
        self.meter = meter
        self._seen: set[str] = set()

    def __call__(self, frame: Frame) -> None:
        """Handle one frame from the TelegramBuffer."""
        if frame.ok:
            self._accept(frame.data)
        else:
            self._reject(frame)

    def _accept(self, telegram: bytes) -> None:
        sender = self.meter or meter_name_of(telegram)
        payload = raw_telegram_envelope(sender, telegram)
        self.counters.inc("telegrams")
        if sender not in self._seen:
            self._seen.add(sender)
            header = telegram.split(b"\r", 1)[0].decode("latin-1")
            log.info("first telegram from meter %s (%s, %d bytes)", sender, header, len(telegram))
        try:
            self.spool.put(sender, payload)
        except sqlite3.Error as exc:
            # A broken spool (disk full, file gone) must not cost the telegram: paho queues it.
            self.counters.inc("spool_errors")
            log.error("spool %s failed (%s); publishing directly", self.spool.path, exc)
            self.bus.publish(signal_topic(self.bus.prefix, RAW_TELEGRAM, sender), payload, qos=1)

    def _reject(self, frame: Frame) -> None:
        reason = frame.error or "rejected"
        kind = reject_kind(reason)
        self.counters.inc(f"rejected_{kind}")
        total = self.counters.inc("rejected")
        header = frame.data[:40].split(b"\r", 1)[0].decode("latin-1")
        log.warning(
            "rejected a telegram (%s): %s; %d bytes starting %r; %d rejected so far",
            kind,
            reason,
            len(frame.data),
            header,
            total,
        )
