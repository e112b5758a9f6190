"""Example plugin: forward every raw telegram, unchanged, to a file and/or a second serial port.

Settings (environment variables of the dsmr-plugins service):
  DSMR_PLUGIN_FORWARD_FILE             append each telegram to this file (CRLF kept)
  DSMR_PLUGIN_FORWARD_SERIAL_PORT      write each telegram to this port (a device such as
                                       /dev/ttyUSB1, or a pyserial URL such as socket://host:2001)
  DSMR_PLUGIN_FORWARD_SERIAL_BAUDRATE  default 115200
  DSMR_PLUGIN_FORWARD_METER            only telegrams of this meter (default: every meter)
At least one of the FILE and SERIAL_PORT settings is required.
"""

import os
import threading
from typing import Any

import serial

from dsmr_datalogger.signals import raw_telegram

FILE = os.environ.get("DSMR_PLUGIN_FORWARD_FILE") or None
PORT = os.environ.get("DSMR_PLUGIN_FORWARD_SERIAL_PORT") or None
BAUDRATE = int(os.environ.get("DSMR_PLUGIN_FORWARD_SERIAL_BAUDRATE") or "115200")
METER = os.environ.get("DSMR_PLUGIN_FORWARD_METER") or None

if FILE is None and PORT is None:
    raise RuntimeError(
        "forward_telegrams needs DSMR_PLUGIN_FORWARD_FILE and/or DSMR_PLUGIN_FORWARD_SERIAL_PORT"
    )

_port: serial.SerialBase | None = None
_lock = threading.Lock()


def _write_serial(telegram: bytes) -> None:
    global _port  # noqa: PLW0603 - one port for the plugin's lifetime, reopened after an error
    with _lock:
        try:
            if _port is None:
                _port = serial.serial_for_url(PORT, baudrate=BAUDRATE, write_timeout=5)
            _port.write(telegram)
            _port.flush()
        except serial.SerialException:
            if _port is not None:
                _port.close()
            _port = None  # reopened for the next telegram
            raise


def forward(sender: str, data: str, **_kwargs: Any) -> None:
    """Write the telegram exactly as the meter sent it (latin-1, CRLF line ends)."""
    telegram = data.encode("latin-1")
    if FILE is not None:
        with open(FILE, "ab") as out:  # noqa: PTH123 - a short append, reopened so rotation works
            out.write(telegram)
    if PORT is not None:
        _write_serial(telegram)


raw_telegram.connect(forward, sender=METER)
