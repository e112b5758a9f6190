"""Readings parsed from real telegrams become analytics points with the right values."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmr_backend.analytics.model import point_from_values
from dsmr_backend.parser import parse

REAL = Path("/work/shared/telegrams/real")


@pytest.mark.parametrize("name", ["v5", "v5_two_mbus", "fluvius_v171"])
def test_a_parsed_telegram_becomes_a_point(name: str) -> None:
    reading = parse((REAL / f"{name}.txt").read_bytes().decode("latin-1"))
    assert reading.timestamp is not None
    point = point_from_values(name, reading.timestamp, reading.values)
    assert point is not None
    assert point.delivered_1 == reading.values["electricity_delivered_1"]
    assert point.returned_2 == reading.values["electricity_returned_2"]
    assert point.currently_delivered == reading.values["electricity_currently_delivered"]
    assert point.gas == reading.values["extra_device_delivered"]
    assert point.gas_timestamp == reading.values["extra_device_timestamp"]
    assert point.water == reading.values.get("water_delivered")
    assert point.phase_voltage_l1 == reading.values["phase_voltage_l1"]
