"""The read loop: open the port (retrying forever), frame its bytes, reopen when it goes quiet."""

import logging
import threading
import time
from collections.abc import Callable

from dsmr_datalogger.ports import EndOfInput, Port, PortError, PortOpener
from dsmr_shared.counters import Counters
from dsmr_shared.framing import Frame, TelegramBuffer

log = logging.getLogger(__name__)

RETRY_LOG_INTERVAL = 60.0
"""While a port stays unavailable, repeat the warning at most this often (seconds)."""


class Reader:
    """Reads telegrams from the port into ``on_frame`` until stopped or the replay ends."""

    def __init__(
        self,
        opener: PortOpener,
        on_frame: Callable[[Frame], None],
        counters: Counters,
        stop: threading.Event,
        *,
        watchdog_seconds: float = 60.0,
        retry_seconds: float = 5.0,
        max_telegram_bytes: int = 16384,
    ) -> None:
        self.opener = opener
        self.on_frame = on_frame
        self.counters = counters
        self.stop = stop
        self.watchdog_seconds = watchdog_seconds
        self.retry_seconds = retry_seconds
        self.max_telegram_bytes = max_telegram_bytes

    def run(self) -> bool:
        """Read until stopped (False) or until a replay reached its end (True)."""
        while not self.stop.is_set():
            port = self._open()
            if port is None:
                return False
            try:
                self._read(port)
            except EndOfInput as end:
                log.info("%s: replay finished", end)
                return True
            finally:
                port.close()
        return False

    def _open(self) -> Port | None:
        failures = 0
        last_logged = 0.0
        last_reason = ""
        while not self.stop.is_set():
            try:
                port = self.opener.open()
            except PortError as exc:
                failures += 1
                self.counters.inc("port_open_failures")
                now = time.monotonic()
                if str(exc) != last_reason or now - last_logged >= RETRY_LOG_INTERVAL:
                    log.warning(
                        "cannot open port %s: %s; retrying every %g s (attempt %d)",
                        self.opener.name, exc, self.retry_seconds, failures,
                    )  # fmt: skip
                    last_logged, last_reason = now, str(exc)
                self.stop.wait(self.retry_seconds)
                continue
            self.counters.inc("port_opens")
            suffix = f" after {failures} failed attempt(s)" if failures else ""
            log.info("port %s opened%s", self.opener.name, suffix)
            return port
        return None

    def _read(self, port: Port) -> None:
        """Read and frame until the port fails, goes quiet, ends, or a stop is requested."""
        buffer = TelegramBuffer(max_size=self.max_telegram_bytes)
        last_good = time.monotonic()
        try:
            while not self.stop.is_set():
                chunk = self._read_chunk(port)
                if chunk is None:
                    return
                if chunk and self._feed(buffer, chunk):
                    last_good = time.monotonic()
                if self._quiet(port, last_good):
                    return
        finally:
            self._discard(buffer)

    def _read_chunk(self, port: Port) -> bytes | None:
        try:
            return port.read()
        except PortError as exc:
            self.counters.inc("port_errors")
            log.warning("port %s lost: %s; reopening", self.opener.name, exc)
            return None

    def _feed(self, buffer: TelegramBuffer, chunk: bytes) -> bool:
        """Frame ``chunk``; True when it completed at least one good telegram."""
        self.counters.inc("bytes_read", len(chunk))
        skipped = buffer.skipped_bytes
        frames = buffer.feed(chunk)
        if buffer.skipped_bytes > skipped:
            self.counters.inc("noise_bytes", buffer.skipped_bytes - skipped)
        good = False
        for frame in frames:
            good = good or frame.ok
            self.on_frame(frame)
        return good

    def _quiet(self, port: Port, last_good: float) -> bool:
        if not (port.watchdog and self.watchdog_seconds):
            return False
        silent = time.monotonic() - last_good
        if silent < self.watchdog_seconds:
            return False
        self.counters.inc("watchdog_reopens")
        log.warning(
            "watchdog: no telegram from %s for %.0f s; reopening the port",
            self.opener.name,
            silent,
        )
        return True

    def _discard(self, buffer: TelegramBuffer) -> None:
        if len(buffer):
            # Bytes after the last '/' when the port closed: half a telegram, never completed.
            self.counters.inc("rejected_partial")
            self.counters.inc("rejected")
            log.warning("discarded %d bytes of an unfinished telegram (port closed)", len(buffer))
