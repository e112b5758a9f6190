"""Counters, logged and published (retained JSON on <prefix>/service/datalogger/stats) periodically."""

import json
import logging
import threading
from datetime import UTC, datetime

from dsmr_datalogger.spool import Spool
from dsmr_shared.bus import Bus
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

LOGGED = (
    "telegrams",
    "rejected",
    "rejected_crc",
    "rejected_framing",
    "rejected_size",
    "noise_bytes",
    "published",
    "spool_dropped",
    "port_opens",
    "watchdog_reopens",
)
"""The counters in the periodic log line (the JSON carries every counter)."""


def stats_topic(prefix: str) -> str:
    """Return the retained stats topic."""
    return f"{prefix}/service/datalogger/stats"


class StatsReporter(threading.Thread):
    """Every ``interval`` seconds: one INFO line with the counts, and the retained stats JSON."""

    def __init__(self, bus: Bus, spool: Spool, counters: Counters, port: str, interval: float) -> None:
        super().__init__(name="stats", daemon=True)
        self.bus = bus
        self.spool = spool
        self.counters = counters
        self.port = port
        self.interval = interval
        self._stop_requested = threading.Event()

    def snapshot(self) -> dict[str, object]:
        """Every counter plus the spool's state."""
        counts = self.counters.snapshot()
        return {
            **{name: counts.get(name, 0) for name in LOGGED},
            **counts,
            "spool_pending": len(self.spool),
            "spool_bytes": self.spool.size_bytes,
            "port": self.port,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def report(self) -> None:
        """Log the stats now, and publish them when the broker is there."""
        stats = self.snapshot()
        log.info(
            "stats: %s spool_pending=%s",
            " ".join(f"{name}={stats[name]}" for name in LOGGED),
            stats["spool_pending"],
        )
        if self.bus.connected:
            # Only when connected: stale stats must not pile up in memory during an outage.
            self.bus.publish(stats_topic(self.bus.prefix), json.dumps(stats), qos=1, retain=True)

    def run(self) -> None:
        """Report every interval until stopped."""
        while not self._stop_requested.wait(self.interval):
            self.report()

    def stop(self) -> None:
        """Stop the periodic reports."""
        self._stop_requested.set()
