"""The datalogger's settings: the P1 port, serial presets, spool, watchdog and simulator."""

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from dsmr_datalogger.config import SERIAL_PRESETS, DataloggerConfig, PortConfig, SerialParams
from dsmr_datalogger.simulator import SimulatorConfig
from dsmr_datalogger.timestamps import from_dutch_local
from dsmr_shared.settings import ServiceSettings
from dsmr_shared.topics import topic_safe

DsmrVersion = Literal["2.2", "3", "4", "5", "be", "lu"]
Parity = Literal["N", "E", "O", "M", "S"]


_VERSION_ALIASES = {"3.0": "3", "4.0": "4", "4.2": "4", "5.0": "5", "5.0.2": "5"}


class DataloggerSettings(ServiceSettings):
    """Settings of dsmr-datalogger (environment variables DSMR_DATALOGGER_*)."""

    datalogger_port: str = Field(
        "simulate",
        title="P1 port",
        description="Where telegrams come from: a serial device (/dev/ttyUSB0), any pyserial URL "
        "(socket://host:port for ser2net and network P1 dongles, rfc2217://host:port), "
        "'simulate' for the built-in household simulator, or 'file:PATH' to replay a capture.",
    )
    datalogger_dsmr_version: DsmrVersion = Field(
        "5",
        title="DSMR version",
        description="Serial preset: 2.2 and 3 -> 9600 baud 7E1; 4, 5, be (Belgium) and "
        "lu (Luxembourg) -> 115200 baud 8N1.",
    )
    datalogger_baudrate: int | None = Field(
        None, gt=0, title="Baud rate", description="Override the preset's baud rate."
    )
    datalogger_bytesize: int | None = Field(
        None, ge=5, le=8, title="Data bits", description="Override the preset's data bits (7 or 8)."
    )
    datalogger_parity: Parity | None = Field(
        None, title="Parity", description="Override the preset's parity: N, E, O, M or S."
    )
    datalogger_stopbits: float | None = Field(
        None, title="Stop bits", description="Override the preset's stop bits: 1, 1.5 or 2."
    )
    datalogger_meter: str | None = Field(
        None,
        title="Meter name",
        description="Sender of raw_telegram (the last topic level). Default: the meter's "
        "equipment id (0-0:96.1.1), hex-decoded when it is hex ASCII, made topic-safe.",
    )
    datalogger_replay_speed: float = Field(
        1.0,
        ge=0,
        title="Replay speed",
        description="For file:PATH: 1 replays in real time (by the telegrams' own timestamps), "
        "N is N times faster, 0 is as fast as possible. The datalogger exits after the replay "
        "once every telegram is published.",
    )
    datalogger_max_telegram_bytes: int = Field(
        16384,
        ge=256,
        title="Largest telegram",
        description="A telegram longer than this is rejected (bounds memory on a noisy line).",
    )
    datalogger_spool_path: Path = Field(
        Path("dsmr-datalogger-spool.sqlite3"),
        title="Spool file",
        description="SQLite file that holds telegrams until the broker acknowledged them.",
    )
    datalogger_spool_max_mb: float = Field(
        100.0,
        gt=0,
        title="Spool size",
        description="Largest spool in MB (about 100,000 telegrams per 100 MB). When full, the "
        "oldest telegrams are dropped (logged and counted): the newest data matters most.",
    )
    datalogger_watchdog_seconds: float = Field(
        60.0,
        ge=0,
        title="Watchdog",
        description="Reopen a serial port or URL after this many seconds without a good "
        "telegram (0 = never).",
    )
    datalogger_retry_seconds: float = Field(
        5.0,
        gt=0,
        title="Retry interval",
        description="Seconds between attempts to open a port that is missing or refuses.",
    )
    datalogger_flush_seconds: float = Field(
        5.0,
        ge=0,
        title="Flush on stop",
        description="On SIGTERM/SIGINT, keep publishing spooled telegrams for at most this "
        "long; the rest stay in the spool for the next start.",
    )
    datalogger_stats_seconds: float = Field(
        60.0,
        gt=0,
        title="Stats interval",
        description="Log the counters and publish them (retained JSON) on "
        "<prefix>/service/datalogger/stats this often.",
    )
    datalogger_simulate_speed: float = Field(
        1.0,
        ge=0,
        title="Simulator speed",
        description="Simulated seconds per wall-clock second (1 = real time, 0 = as fast as possible).",
    )
    datalogger_simulate_start: datetime | None = Field(
        None,
        title="Simulator start",
        description="Simulated start time, ISO 8601 (without offset: Dutch local time). Default: now.",
    )
    datalogger_simulate_solar: bool = Field(
        True, title="Simulated solar", description="Simulate solar panels that return power."
    )
    datalogger_simulate_gas: bool = Field(
        True, title="Simulated gas", description="Simulate a gas meter (0-1:24.2.1)."
    )
    datalogger_simulate_seed: int = Field(
        1, title="Simulator seed", description="Seed of the simulator's randomness."
    )

    @field_validator("datalogger_dsmr_version", mode="before")
    @classmethod
    def _version_alias(cls, value: object) -> object:
        if isinstance(value, int | float):
            value = str(value)
        if isinstance(value, str):
            value = value.strip().lower()
            return _VERSION_ALIASES.get(value, value)
        return value

    @field_validator("datalogger_parity", mode="before")
    @classmethod
    def _parity_upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("datalogger_stopbits")
    @classmethod
    def _stopbits(cls, value: float | None) -> float | None:
        if value is not None and value not in (1, 1.5, 2):
            raise ValueError("must be 1, 1.5 or 2")
        return value

    @field_validator("datalogger_meter")
    @classmethod
    def _meter_topic_safe(cls, value: str | None) -> str | None:
        if value is not None and topic_safe(value) != value:
            raise ValueError(
                f"must be one topic level of letters, digits, '_', '.', '-' "
                f"(for example {topic_safe(value)!r})"
            )
        return value

    @field_validator("datalogger_port")
    @classmethod
    def _port_given(cls, value: str) -> str:
        value = value.strip()
        if not value or value == "file:":
            raise ValueError("must name a device, a URL, 'simulate' or 'file:PATH'")
        return value

    @property
    def serial_params(self) -> SerialParams:
        """The preset for the DSMR version with any explicit override applied."""
        preset = SERIAL_PRESETS[self.datalogger_dsmr_version]
        return SerialParams(
            baudrate=self.datalogger_baudrate or preset.baudrate,
            bytesize=self.datalogger_bytesize or preset.bytesize,
            parity=self.datalogger_parity or preset.parity,
            stopbits=self.datalogger_stopbits or preset.stopbits,
        )

    @property
    def spool_max_bytes(self) -> int:
        """The spool bound in bytes."""
        return int(self.datalogger_spool_max_mb * 1024 * 1024)

    def config(self) -> DataloggerConfig:
        """The runtime configuration these settings describe."""
        port = PortConfig(
            spec=self.datalogger_port,
            serial=self.serial_params,
            replay_speed=self.datalogger_replay_speed,
            simulator=simulator_config(self),
            simulate_speed=self.datalogger_simulate_speed,
        )
        return DataloggerConfig(
            mqtt=self.mqtt_config(),
            log_level=self.log_level,
            port=port,
            meter=self.datalogger_meter,
            max_telegram_bytes=self.datalogger_max_telegram_bytes,
            spool_path=self.datalogger_spool_path,
            spool_max_bytes=self.spool_max_bytes,
            watchdog_seconds=self.datalogger_watchdog_seconds,
            retry_seconds=self.datalogger_retry_seconds,
            flush_seconds=self.datalogger_flush_seconds,
            stats_seconds=self.datalogger_stats_seconds,
        )


def simulator_config(settings: DataloggerSettings) -> SimulatorConfig:
    """Turn the DSMR_DATALOGGER_SIMULATE_* settings into a simulator config."""
    start = settings.datalogger_simulate_start
    if start is not None and start.tzinfo is None:
        start = from_dutch_local(start)
    defaults = SimulatorConfig()
    return SimulatorConfig(
        start=start or defaults.start,
        solar=settings.datalogger_simulate_solar,
        gas=settings.datalogger_simulate_gas,
        seed=settings.datalogger_simulate_seed,
    )
