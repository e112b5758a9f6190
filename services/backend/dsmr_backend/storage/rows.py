"""Turn a parsed Reading into database rows (and back), driven by the field table."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dsmr_backend.reading import Reading
from dsmr_backend.storage.schema import column_keys, time_keys


@dataclass(frozen=True, slots=True)
class MeterReading:
    """A parsed reading with the meter it belongs to and the time it is stored under."""

    meter: str
    timestamp: datetime  # aware UTC: the telegram's time, or a stand-in for DSMR 2.2/3
    reading: Reading
    telegram: str
    via_datalogger: bool = True  # False: a plain-text telegram from a third-party dongle


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def extras_of(reading: Reading) -> dict[str, Any] | None:
    """What the columns do not hold: unknown OBIS lines, the power-failure log, peak history."""
    extra: dict[str, Any] = {}
    if reading.extras:
        extra["unknown"] = dict(reading.extras)
    if reading.power_failures:
        extra["power_failures"] = [
            {"ended_at": p.ended_at.isoformat() if p.ended_at else None, "duration_s": p.duration_s}
            for p in reading.power_failures
        ]
    if reading.peak_history:
        extra["peak_history"] = [
            {
                "month_start": p.month_start.isoformat() if p.month_start else None,
                "peak_at": p.peak_at.isoformat() if p.peak_at else None,
                "value": str(p.value),
            }
            for p in reading.peak_history
        ]
    return extra or None


def reading_row(meter_id: int, item: MeterReading) -> dict[str, Any]:
    """The ``readings`` row of one reading: key, the stored fields it carries, extras.

    Absent fields are left out (they are NULL): a batch inserts only the columns it uses.
    """
    row: dict[str, Any] = {
        "meter_id": meter_id,
        "timestamp": as_utc(item.timestamp),
        "extra": extras_of(item.reading),
    }
    columns = column_keys()
    times = time_keys()
    for key, value in item.reading.values.items():
        if key in columns and value is not None:
            row[key] = as_utc(value) if key in times else value  # type: ignore[arg-type]
    return row


def mbus_rows(meter_id: int, reading: Reading) -> list[dict[str, Any]]:
    """One ``mbus_readings`` row per M-Bus device that sent a timed reading."""
    return [
        {
            "meter_id": meter_id,
            "channel": device.channel,
            "device_type": device.device_type,
            "equipment_identifier": device.equipment_id,
            "timestamp": as_utc(device.timestamp),
            "value": device.value,
            "unit": device.unit,
        }
        for device in reading.mbus.values()
        if device.timestamp is not None and device.value is not None
    ]
