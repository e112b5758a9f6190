"""DSMR 5 telegrams (valid CRC) from generated readings: capture files for import tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from dsmr_backend.analytics.model import ReadingPoint
from dsmr_shared.crc import crc16

AMS = ZoneInfo("Europe/Amsterdam")
EQUIPMENT_ID = "E0012345678901234"  # the meter name the backend derives from the telegrams


def dsmr_time(instant: datetime) -> str:
    """YYMMDDhhmmss plus S (summer) or W (winter), Dutch local time."""
    local = instant.astimezone(AMS)
    return f"{local:%y%m%d%H%M%S}{'S' if local.dst() else 'W'}"


def _kwh(value: Decimal) -> str:
    return f"{value:010.3f}"


def telegram(point: ReadingPoint, equipment_id: str = EQUIPMENT_ID) -> bytes:
    """One DSMR 5.0 telegram carrying the point's registers, power and gas."""
    kw = point.currently_delivered or Decimal(0)
    back = point.currently_returned or Decimal(0)
    lines = [
        "/TST5\\2TEST-METER",
        "",
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({dsmr_time(point.timestamp)})",
        f"0-0:96.1.1({equipment_id.encode().hex().upper()})",
        f"1-0:1.8.1({_kwh(point.delivered_1)}*kWh)",
        f"1-0:1.8.2({_kwh(point.delivered_2)}*kWh)",
        f"1-0:2.8.1({_kwh(point.returned_1)}*kWh)",
        f"1-0:2.8.2({_kwh(point.returned_2)}*kWh)",
        "0-0:96.14.0(0001)",
        f"1-0:1.7.0({kw:06.3f}*kW)",
        f"1-0:2.7.0({back:06.3f}*kW)",
        f"1-0:32.7.0({point.phase_voltage_l1 or Decimal('230.0'):06.1f}*V)",
    ]
    if point.gas is not None and point.gas_timestamp is not None:
        lines += [
            "0-1:24.1.0(003)",
            f"0-1:24.2.1({dsmr_time(point.gas_timestamp)})({point.gas:09.3f}*m3)",
        ]
    body = ("\r\n".join(lines) + "\r\n!").encode("latin-1")
    return body + f"{crc16(body):04X}\r\n".encode()


def capture(points: list[ReadingPoint]) -> bytes:
    """Telegrams back to back, as a P1 capture file holds them."""
    return b"".join(telegram(p) for p in points)
