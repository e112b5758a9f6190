"""The datalogger's runtime configuration: plain values built from validated settings.

The running datalogger never imports pydantic: ``dsmr-datalogger`` validates its settings in a
short-lived child process and receives this config (see ``__main__``). That keeps the service's
memory within its budget; the settings themselves stay declared once, in ``settings``.
"""

from dataclasses import dataclass
from pathlib import Path

from dsmr_datalogger.simulator import SimulatorConfig
from dsmr_shared.broker import MqttConfig


@dataclass(frozen=True)
class SerialParams:
    """What pyserial needs besides the port name."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: float


SERIAL_PRESETS: dict[str, SerialParams] = {
    "2.2": SerialParams(9600, 7, "E", 1),
    "3": SerialParams(9600, 7, "E", 1),
    "4": SerialParams(115200, 8, "N", 1),
    "5": SerialParams(115200, 8, "N", 1),
    "be": SerialParams(115200, 8, "N", 1),
    "lu": SerialParams(115200, 8, "N", 1),
}
"""DSMR 2.2 and 3 talk 9600 baud 7E1; DSMR 4 and later (and the Belgian and Luxembourg
variants) 115200 baud 8N1."""


@dataclass(frozen=True)
class PortConfig:
    """Where telegrams come from and how to read them there."""

    spec: str
    serial: SerialParams
    replay_speed: float
    simulator: SimulatorConfig
    simulate_speed: float


@dataclass(frozen=True)
class DataloggerConfig:
    """Everything the running datalogger needs."""

    mqtt: MqttConfig
    log_level: str
    port: PortConfig
    meter: str | None
    max_telegram_bytes: int
    spool_path: Path
    spool_max_bytes: int
    watchdog_seconds: float
    retry_seconds: float
    flush_seconds: float
    stats_seconds: float
