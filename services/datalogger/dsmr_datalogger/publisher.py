"""The publisher thread: spooled telegrams to the broker in order, each deleted after its PUBACK."""

import logging
import threading
import time

from dsmr_datalogger.spool import Spool, SpoolItem
from dsmr_shared.bus import Bus, PublishHandle
from dsmr_shared.counters import Counters
from dsmr_shared.topics import RAW_TELEGRAM, signal_topic

log = logging.getLogger(__name__)

POLL = 0.5
"""How long one wait (for an item, a connection, an ack) lasts before the stop flag is checked."""


class Publisher(threading.Thread):
    """Publishes the spool oldest-first at QoS 1; never drops, never reorders."""

    def __init__(self, bus: Bus, spool: Spool, counters: Counters) -> None:
        super().__init__(name="publisher", daemon=True)
        self.bus = bus
        self.spool = spool
        self.counters = counters
        self._stopping = threading.Event()
        self._deadline = float("inf")

    def stop(self, flush_seconds: float) -> None:
        """Stop after the spool is empty or ``flush_seconds`` passed, whichever is first."""
        self._deadline = time.monotonic() + flush_seconds
        self._stopping.set()
        self.join(flush_seconds + 2 * POLL)
        left = len(self.spool)
        if left:
            log.info("%d telegram(s) stay in the spool for the next start", left)

    def _done(self) -> bool:
        if not self._stopping.is_set():
            return False
        return time.monotonic() >= self._deadline or len(self.spool) == 0

    def run(self) -> None:
        """Publish until stopped; an unexpected error is logged and retried, never fatal."""
        while not self._done():
            try:
                self._step()
            except Exception:
                self.counters.inc("publisher_errors")
                log.exception("publisher error; retrying in %.1f s", POLL)
                time.sleep(POLL)

    def _step(self) -> None:
        item = self.spool.wait_oldest(POLL)
        if item is None or not self.bus.wait_connected(POLL):
            return
        if self._publish(item):
            self.spool.delete(item.seq)
            if self.counters.inc("published") == 1:
                log.info("first telegram published (QoS 1, acknowledged by the broker)")

    def _publish(self, item: SpoolItem) -> bool:
        topic = signal_topic(self.bus.prefix, RAW_TELEGRAM, item.sender)
        handle = self.bus.publish(topic, item.payload, qos=1)
        return self._acknowledged(handle)

    def _acknowledged(self, handle: PublishHandle) -> bool:
        """Wait for the PUBACK. paho keeps an accepted QoS 1 message and resends it after a
        reconnect, so we keep waiting on the same handle rather than publish a second copy."""
        while True:
            began = time.monotonic()
            if handle.wait(POLL):
                return True
            if time.monotonic() - began < POLL / 2:
                # Refused outright (no connection at that instant): publish it again later.
                self.counters.inc("publish_retries")
                return False
            if self._stopping.is_set() and time.monotonic() >= self._deadline:
                return False
