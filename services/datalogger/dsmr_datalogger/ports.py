"""Where telegram bytes come from: a serial device or pyserial URL, a capture file, the simulator."""

import logging
import re
import select
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import serial

from dsmr_datalogger.config import PortConfig, SerialParams
from dsmr_datalogger.simulator import Simulator
from dsmr_datalogger.timestamps import telegram_time
from dsmr_shared.errors import DsmrError

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.5
"""Longest a read blocks, so the reader notices a stop request or a quiet port soon."""

MAX_READ = 65536
REPLAY_BLOCK = 65536
MAX_REPLAY_GAP = 60.0
"""Longest pause (recorded seconds) between two replayed telegrams: captures have gaps."""


_ERRNO_TEXT = re.compile(r"\[Errno \d+\] ([^\[]+)$")


class PortError(DsmrError):
    """A port cannot be opened, or it vanished while reading."""


class EndOfInput(DsmrError):  # noqa: N818 - an end, not a failure
    """A replayed capture has no more bytes."""


class Port(Protocol):
    """An open source of telegram bytes."""

    watchdog: bool
    """Whether the quiet-port watchdog applies (real ports only)."""

    def read(self) -> bytes:
        """Return the next bytes, or b"" after at most READ_TIMEOUT without any."""
        ...

    def close(self) -> None:
        """Release the port."""
        ...


class SerialPort:
    """A serial device or any pyserial URL (socket://, rfc2217://, loop://)."""

    watchdog = True

    def __init__(self, url: str, params: SerialParams) -> None:
        self.url = url
        stopbits = int(params.stopbits) if float(params.stopbits).is_integer() else params.stopbits
        try:
            self._serial = serial.serial_for_url(
                url,
                baudrate=params.baudrate,
                bytesize=params.bytesize,
                parity=params.parity,
                stopbits=stopbits,
                timeout=READ_TIMEOUT,
            )
            self._fileno = _selectable(self._serial)
            if self._fileno is not None:
                self._serial.timeout = 0  # we wait in select(); reads take what is there
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(_reason(exc)) from None

    def read(self) -> bytes:
        """Return what the port has, waiting up to READ_TIMEOUT for the first byte."""
        try:
            if self._fileno is None:
                data: bytes = self._serial.read(max(1, self._serial.in_waiting))
                return data
            # select() + one big read: a socket's in_waiting is only 0 or 1, which would
            # otherwise mean one read per byte.
            ready, _, _ = select.select([self._fileno], [], [], READ_TIMEOUT)
            return bytes(self._serial.read(MAX_READ)) if ready else b""
        except (serial.SerialException, OSError) as exc:
            raise PortError(_reason(exc)) from None

    def close(self) -> None:
        """Close the device or connection, ignoring errors of a port that is gone."""
        try:
            self._serial.close()
        except (serial.SerialException, OSError) as exc:
            log.debug("closing %s: %s", self.url, exc)


def _selectable(port: serial.SerialBase) -> int | None:
    """The port's file descriptor when select() works on it (devices, socket://), else None."""
    try:
        fileno = port.fileno()
    except (AttributeError, OSError, serial.SerialException):
        return None
    return fileno if isinstance(fileno, int) else None


def _reason(exc: BaseException) -> str:
    """A short one-line reason: pyserial repeats the port name and nests "[Errno N]" texts."""
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    nested = _ERRNO_TEXT.search(text)
    return nested.group(1) if nested else text


class Pacer:
    """Spaces out items by their own timestamps, ``speed`` times faster than recorded."""

    def __init__(self, speed: float, max_gap: float = MAX_REPLAY_GAP) -> None:
        self.speed = speed
        self.max_gap = max_gap
        self._last: datetime | None = None
        self._due = 0.0

    def schedule(self, moment: datetime) -> None:
        """Set when the item recorded at ``moment`` is due."""
        now = time.monotonic()
        if self._last is None or self.speed == 0:
            self._due = now
        else:
            gap = min(max((moment - self._last).total_seconds(), 0.0), self.max_gap)
            self._due = max(self._due + gap / self.speed, now - self.max_gap)
        self._last = moment

    def wait(self, limit: float = READ_TIMEOUT) -> bool:
        """Sleep until the item is due, at most ``limit`` seconds; True when it is due."""
        remaining = self._due - time.monotonic()
        if remaining > 0:
            time.sleep(min(remaining, limit))
        return time.monotonic() >= self._due


class SimulatedPort:
    """The simulator as a port: one telegram per simulated interval, paced by ``speed``."""

    watchdog = False

    def __init__(self, simulator: Simulator, speed: float) -> None:
        self._simulator = simulator
        self._pacer = Pacer(speed, max_gap=float("inf"))
        self._pending: bytes | None = None

    def read(self) -> bytes:
        """Return the next telegram once it is due."""
        if self._pending is None:
            step = self._simulator.step()
            self._pending = step.data
            self._pacer.schedule(step.at)
        if not self._pacer.wait():
            return b""
        data, self._pending = self._pending, None
        return data

    def close(self) -> None:
        """Nothing to release; the simulated house keeps its state for the next open."""


def file_pieces(path: Path) -> Iterator[bytes]:
    """Yield a capture in pieces that each start at a line beginning with ``/``."""
    pending = b""
    with path.open("rb") as handle:
        while block := handle.read(REPLAY_BLOCK):
            pending += block
            start = 0
            while (cut := pending.find(b"\n/", start)) >= 0:
                yield pending[start : cut + 1]
                start = cut + 1
            pending = pending[start:]
    if pending:
        yield pending


class FileReplay:
    """A capture file replayed telegram by telegram, by its timestamps (or 1 s apart)."""

    watchdog = False

    def __init__(self, path: Path, speed: float) -> None:
        if not path.is_file():
            raise PortError(f"{path}: no such file")
        self.path = path
        self._pieces = file_pieces(path)
        self._pacer = Pacer(speed)
        self._pending: bytes | None = None
        self._clock: datetime | None = None

    def read(self) -> bytes:
        """Return the next piece of the capture once it is due; EndOfInput at the end."""
        if self._pending is None:
            self._pending = next(self._pieces, None)
            if self._pending is None:
                raise EndOfInput(f"end of {self.path}")
            self._pacer.schedule(self._moment(self._pending))
        if not self._pacer.wait():
            return b""
        data, self._pending = self._pending, None
        return data

    def _moment(self, piece: bytes) -> datetime:
        # Telegrams without a timestamp (DSMR 2.2/3) are taken to be one second apart.
        moment = telegram_time(piece)
        if moment is None:
            previous = self._clock or datetime.now(UTC)
            moment = previous + timedelta(seconds=1)
        self._clock = moment
        return moment

    def close(self) -> None:
        """Keep the position: a reopen continues where the replay was."""


class PortOpener:
    """Opens the configured port; keeps simulator and replay state across reopens."""

    def __init__(self, config: PortConfig) -> None:
        self.config = config
        self.name = config.spec
        self._virtual: Port | None = None

    def open(self) -> Port:
        """Open (or reopen) the port; PortError when it cannot be opened now."""
        if self._virtual is not None:
            return self._virtual
        spec = self.name
        if spec == "simulate":
            self._virtual = SimulatedPort(Simulator(self.config.simulator), self.config.simulate_speed)
            return self._virtual
        if spec.startswith("file:"):
            path = Path(spec.removeprefix("file:")).expanduser()
            self._virtual = FileReplay(path, self.config.replay_speed)
            return self._virtual
        return SerialPort(spec, self.config.serial)
