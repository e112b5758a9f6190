"""Small typed values in and out of the analytics: readings in; consumption, peaks and statistics out.

Field names follow DSMR-reader's models (dsmr_consumption, dsmr_stats) plus ``meter``, so a record
can be published in ``post_save`` as it is (see ``as_record``). Energy is in kWh, power in kW, gas
and water in m3, money in the prices' currency; every datetime is aware and in UTC.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class ReadingPoint:
    """What the analytics need of one stored reading (one telegram) of one meter."""

    meter: str
    timestamp: datetime  # the telegram's time, UTC
    delivered_1: Decimal  # kWh registers
    delivered_2: Decimal
    returned_1: Decimal
    returned_2: Decimal
    currently_delivered: Decimal | None = None  # kW
    currently_returned: Decimal | None = None
    phase_currently_delivered_l1: Decimal | None = None
    phase_currently_delivered_l2: Decimal | None = None
    phase_currently_delivered_l3: Decimal | None = None
    phase_currently_returned_l1: Decimal | None = None
    phase_currently_returned_l2: Decimal | None = None
    phase_currently_returned_l3: Decimal | None = None
    phase_voltage_l1: Decimal | None = None  # V
    phase_voltage_l2: Decimal | None = None
    phase_voltage_l3: Decimal | None = None
    phase_power_current_l1: Decimal | None = None  # A
    phase_power_current_l2: Decimal | None = None
    phase_power_current_l3: Decimal | None = None
    gas: Decimal | None = None  # m3, the gas M-Bus register (DSMR-reader's extra_device_delivered)
    gas_timestamp: datetime | None = None  # when the gas meter took that value (UTC)
    water: Decimal | None = None  # m3
    water_timestamp: datetime | None = None  # None: the telegram's time is used


# Reading column (dsmr_backend.fields key) -> ReadingPoint attribute, where the names differ.
_RENAMED = {
    "electricity_delivered_1": "delivered_1",
    "electricity_delivered_2": "delivered_2",
    "electricity_returned_1": "returned_1",
    "electricity_returned_2": "returned_2",
    "electricity_currently_delivered": "currently_delivered",
    "electricity_currently_returned": "currently_returned",
    "extra_device_delivered": "gas",
    "extra_device_timestamp": "gas_timestamp",
    "water_delivered": "water",
}
_REGISTERS = ("delivered_1", "delivered_2", "returned_1", "returned_2")
_POINT_FIELDS = frozenset(f.name for f in dataclasses.fields(ReadingPoint))


def point_from_values(meter: str, timestamp: datetime, values: Mapping[str, Any]) -> ReadingPoint | None:
    """A ReadingPoint from a stored reading's columns (field keys); None without the four registers."""
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = _RENAMED.get(key, key)
        if name in _POINT_FIELDS and name not in ("meter", "timestamp") and value is not None:
            kwargs[name] = value
    if any(kwargs.get(name) is None for name in _REGISTERS):
        return None
    return ReadingPoint(meter=meter, timestamp=timestamp, **kwargs)


@dataclasses.dataclass(frozen=True, slots=True)
class ElectricityConsumption:
    """One minute of electricity (DSMR-reader's grouping by minute): register maxima, power averages."""

    meter: str
    read_at: datetime  # the end of the minute, as DSMR-reader stamps it
    delivered_1: Decimal
    returned_1: Decimal
    delivered_2: Decimal
    returned_2: Decimal
    currently_delivered: Decimal | None
    currently_returned: Decimal | None
    phase_currently_delivered_l1: Decimal | None = None
    phase_currently_delivered_l2: Decimal | None = None
    phase_currently_delivered_l3: Decimal | None = None
    phase_currently_returned_l1: Decimal | None = None
    phase_currently_returned_l2: Decimal | None = None
    phase_currently_returned_l3: Decimal | None = None
    phase_voltage_l1: Decimal | None = None
    phase_voltage_l2: Decimal | None = None
    phase_voltage_l3: Decimal | None = None
    phase_power_current_l1: Decimal | None = None
    phase_power_current_l2: Decimal | None = None
    phase_power_current_l3: Decimal | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GasConsumption:
    """One new gas register value, at the gas meter's own timestamp, with the change since the last."""

    meter: str
    read_at: datetime
    delivered: Decimal  # m3, the register
    currently_delivered: Decimal  # m3 since the previous value (0 for the first one known)


@dataclasses.dataclass(frozen=True, slots=True)
class QuarterHourPeak:
    """Average power over one quarter hour (Belgian capacity tariff), from the kWh change."""

    meter: str
    read_at_start: datetime  # the first reading at or after the quarter's start
    read_at_end: datetime  # the first reading at or after the quarter's end
    average_delivered: Decimal  # kW, 3 decimals

    @property
    def duration_s(self) -> float:
        """Seconds between the two readings (about 900)."""
        return (self.read_at_end - self.read_at_start).total_seconds()


@dataclasses.dataclass(frozen=True, slots=True)
class HourStatistics:
    """One local hour of one meter, boundary to boundary."""

    meter: str
    hour_start: datetime  # UTC; the local hour starting then
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None = None  # None: the meter has no gas
    water: Decimal | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DayStatistics:
    """One local day of one meter, boundary to boundary, with its costs (None: no price that day)."""

    meter: str
    day: date
    electricity1: Decimal
    electricity2: Decimal
    electricity1_returned: Decimal
    electricity2_returned: Decimal
    gas: Decimal | None = None
    water: Decimal | None = None
    electricity1_cost: Decimal | None = None
    electricity2_cost: Decimal | None = None
    gas_cost: Decimal | None = None
    fixed_cost: Decimal | None = None
    total_cost: Decimal | None = None
    # The registers at the day's start (the first reading at or after local midnight).
    electricity1_reading: Decimal | None = None
    electricity2_reading: Decimal | None = None
    electricity1_returned_reading: Decimal | None = None
    electricity2_returned_reading: Decimal | None = None
    gas_reading: Decimal | None = None

    @property
    def electricity_merged(self) -> Decimal:
        """Delivered over both tariffs (kWh)."""
        return self.electricity1 + self.electricity2

    @property
    def electricity_returned_merged(self) -> Decimal:
        """Returned over both tariffs (kWh)."""
        return self.electricity1_returned + self.electricity2_returned


def as_record(value: Any) -> dict[str, Any]:
    """An analytics value as a plain dict of its fields (for post_save and the store)."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
