"""The typed result of parsing one telegram: ``Reading`` and its parts.

Reach values through ``reading.values[key]`` with the keys of ``dsmr_backend.fields`` (for example
``reading.values["electricity_delivered_1"]`` -> ``Decimal`` kWh,
``reading.values["electricity_currently_delivered"]`` -> ``Decimal`` kW,
``reading.values["electricity_tariff"]`` -> ``int``). A key is absent when the telegram did not
carry the value (or carried an empty one). ``reading.get(key)`` returns None then.

The first gas M-Bus device also fills ``values["extra_device_delivered"]`` (m3) and
``values["extra_device_timestamp"]`` (UTC), as DSMR-reader's "extra device" does; the device
itself is in ``reading.mbus`` (by channel 1..4) and ``reading.gas()`` returns it.

All datetimes are aware and in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from dsmr_backend.fields import MBUS_DEVICE_TYPES, Value


@dataclass(frozen=True, slots=True)
class MeterIdentity:
    """Who sent the telegram: its header line and equipment identifier."""

    header: str  # the first line without "/", e.g. "ISk5\\2MT382-1000" (the HA model)
    equipment_id: str | None  # decoded from hex when it is hex-encoded ASCII
    equipment_id_raw: str | None  # as sent

    @property
    def manufacturer(self) -> str:
        """The three-letter manufacturer flag of the header ("ISk", "KFM", "FLU", ...)."""
        return self.header[:3]


@dataclass(slots=True)
class MbusDevice:
    """One M-Bus device (channel 1..4): gas, heat, water, ..., and its latest reading."""

    channel: int
    device_type: int | None = None  # 3 gas, 4 heat, 7 water
    equipment_id: str | None = None  # decoded from hex when it is hex-encoded ASCII
    equipment_id_raw: str | None = None
    value: Decimal | None = None  # None: not linked / no reading
    unit: str | None = None  # as sent ("m3", "GJ"); the type's unit when the meter sent none
    timestamp: datetime | None = None  # when the device took the reading (UTC)
    valve_position: int | None = None

    @property
    def kind(self) -> str | None:
        """ "gas", "heat", "water", or None for an unknown type."""
        if self.device_type is None:
            return None
        return MBUS_DEVICE_TYPES.get(self.device_type)


@dataclass(frozen=True, slots=True)
class PowerFailure:
    """One entry of the power-failure event log (1-0:99.97.0)."""

    ended_at: datetime | None  # end of the failure (UTC); None when the meter sent none
    duration_s: int


@dataclass(frozen=True, slots=True)
class MonthlyPeak:
    """One month of the Belgian peak-demand history (0-0:98.1.0)."""

    month_start: datetime | None  # UTC
    peak_at: datetime | None  # None for a month without a peak yet ("632525252525W")
    value: Decimal  # kW


@dataclass(frozen=True, slots=True)
class PeakDemand:
    """Belgian capacity-tariff data: current quarter-hour average, monthly peak and history."""

    current_average: Decimal | None  # kW, 1-0:1.4.0
    month_max: Decimal | None  # kW, 1-0:1.6.0
    month_max_at: datetime | None
    history: tuple[MonthlyPeak, ...]  # 0-0:98.1.0, oldest first as sent


@dataclass(frozen=True, slots=True)
class ExtraDevice:
    """DSMR-reader's "extra device": the first gas M-Bus device's reading."""

    extra_device_timestamp: datetime
    extra_device_delivered: Decimal  # m3


@dataclass(slots=True)
class Reading:
    """Everything one telegram says, typed; see the module docstring."""

    meter: MeterIdentity
    timestamp: datetime | None  # telegram time (UTC); DSMR 2.2/3 send none: see parse()
    values: dict[str, Value] = field(default_factory=dict)
    mbus: dict[int, MbusDevice] = field(default_factory=dict)
    power_failures: tuple[PowerFailure, ...] = ()
    peak_history: tuple[MonthlyPeak, ...] = ()
    extras: dict[str, str] = field(default_factory=dict)  # unknown OBIS -> raw "(...)" text

    def get(self, key: str) -> Value | None:
        """The value of a field key, or None when the telegram did not carry it."""
        return self.values.get(key)

    @property
    def text_message(self) -> str | None:
        """The meter's text message (decoded when hex-encoded ASCII), None when empty."""
        value = self.values.get("text_message")
        return value if isinstance(value, str) else None

    def mbus_of_type(self, device_type: int) -> MbusDevice | None:
        """The first (lowest channel) M-Bus device of a type that has a reading."""
        for channel in sorted(self.mbus):
            device = self.mbus[channel]
            if device.device_type == device_type and device.value is not None:
                return device
        return None

    def gas(self) -> MbusDevice | None:
        """The first gas M-Bus device with a reading."""
        return self.mbus_of_type(3)

    def extra_device(self) -> ExtraDevice | None:
        """DSMR-reader's extra device reading (first gas device), or None without gas."""
        device = self.gas()
        if device is None or device.value is None or device.timestamp is None:
            return None
        return ExtraDevice(device.timestamp, device.value)

    @property
    def peak_demand(self) -> PeakDemand | None:
        """Belgian peak-demand data, or None when the meter sends none."""
        average = self.values.get("current_average_demand")
        peak = self.values.get("maximum_demand_month")
        peak_at = self.values.get("maximum_demand_month_timestamp")
        if average is None and peak is None and not self.peak_history:
            return None
        return PeakDemand(
            average if isinstance(average, Decimal) else None,
            peak if isinstance(peak, Decimal) else None,
            peak_at if isinstance(peak_at, datetime) else None,
            self.peak_history,
        )
