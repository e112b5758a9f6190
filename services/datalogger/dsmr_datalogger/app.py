"""Wiring: port -> framing -> spool -> publisher -> broker, with stats and a clean shutdown."""

import logging
import threading

from dsmr_datalogger.ports import PortOpener
from dsmr_datalogger.publisher import Publisher
from dsmr_datalogger.reader import Reader
from dsmr_datalogger.settings import DataloggerSettings
from dsmr_datalogger.sink import TelegramSink
from dsmr_datalogger.spool import Spool
from dsmr_datalogger.stats import StatsReporter
from dsmr_shared.bus import Bus
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

SERVICE = "datalogger"


class Datalogger:
    """The whole service; ``run`` returns when stopped or when a replay is fully published."""

    def __init__(self, settings: DataloggerSettings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self.counters = Counters()
        self.spool = Spool(settings.datalogger_spool_path, settings.spool_max_bytes, self.counters)
        self.bus = Bus(settings, SERVICE)
        self.publisher = Publisher(self.bus, self.spool, self.counters)
        self.stats = StatsReporter(
            self.bus,
            self.spool,
            self.counters,
            settings.datalogger_port,
            settings.datalogger_stats_seconds,
        )
        self.reader = Reader(
            PortOpener(settings),
            TelegramSink(self.spool, self.counters, self.bus, settings.datalogger_meter),
            self.counters,
            stop,
            watchdog_seconds=settings.datalogger_watchdog_seconds,
            retry_seconds=settings.datalogger_retry_seconds,
            max_telegram_bytes=settings.datalogger_max_telegram_bytes,
        )

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or the end of a replay); return the exit code."""
        s = self.settings
        log.info(
            "reading %s; broker %s:%s; spool %s (%d waiting)",
            s.datalogger_port,
            s.mqtt_host,
            s.mqtt_port,
            s.datalogger_spool_path,
            len(self.spool),
        )
        self.bus.start()
        self.publisher.start()
        self.stats.start()
        try:
            if self.reader.run():
                self._drain()
        finally:
            self._shutdown()
        return 0

    def _drain(self) -> None:
        """After a replay: wait (until stopped) for every telegram to be acknowledged."""
        log.info("waiting for the broker to take the %d spooled telegram(s)", len(self.spool))
        while not self.stop.is_set() and not self.spool.wait_empty(0.5):
            pass

    def _shutdown(self) -> None:
        self.publisher.stop(self.settings.datalogger_flush_seconds)
        self.stats.stop()
        self.stats.report()
        self.bus.close()
        self.spool.close()
        log.info("stopped")
