"""Wiring: port -> framing -> spool -> publisher -> broker, with stats and a clean shutdown."""

import logging
import threading

from dsmr_datalogger.config import DataloggerConfig
from dsmr_datalogger.ports import PortOpener
from dsmr_datalogger.publisher import Publisher
from dsmr_datalogger.reader import Reader
from dsmr_datalogger.sink import TelegramSink
from dsmr_datalogger.spool import Spool
from dsmr_datalogger.stats import StatsReporter
from dsmr_shared.bus import Bus
from dsmr_shared.counters import Counters

log = logging.getLogger(__name__)

SERVICE = "datalogger"


class Datalogger:
    """The whole service; ``run`` returns when stopped or when a replay is fully published."""

    def __init__(self, config: DataloggerConfig, stop: threading.Event) -> None:
        self.config = config
        self.stop = stop
        self.counters = Counters()
        self.spool = Spool(config.spool_path, config.spool_max_bytes, self.counters)
        self.bus = Bus(config.mqtt, SERVICE)
        self.publisher = Publisher(self.bus, self.spool, self.counters)
        self.stats = StatsReporter(
            self.bus, self.spool, self.counters, config.port.spec, config.stats_seconds
        )
        self.reader = Reader(
            PortOpener(config.port),
            TelegramSink(self.spool, self.counters, self.bus, config.meter),
            self.counters,
            stop,
            watchdog_seconds=config.watchdog_seconds,
            retry_seconds=config.retry_seconds,
            max_telegram_bytes=config.max_telegram_bytes,
        )

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or the end of a replay); return the exit code."""
        c = self.config
        log.info(
            "reading %s; broker %s:%s; spool %s (%d waiting)",
            c.port.spec,
            c.mqtt.host,
            c.mqtt.port,
            c.spool_path,
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
        self.publisher.stop(self.config.flush_seconds)
        self.stats.stop()
        self.stats.report()
        self.bus.close()
        self.spool.close()
        log.info("stopped")
