"""Every real telegram parses to the values dsmr_parser 1.11.2 reads (its *.expected.json).

Numbers are compared exactly: Decimal(str(reference float)) against our value converted back to
the reference's unit. Times are compared as UTC datetimes. The reference's names map onto our
field keys through REFERENCE_KEYS (and the M-Bus names through MBUS_ATTRIBUTES); the deliberate
differences are in DELIBERATE_DIFFERENCES, with the reason (also in docs/parser.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dsmr_backend.fields import FIELDS_BY_KEY, Value
from dsmr_backend.parser import parse
from dsmr_backend.reading import MbusDevice, Reading

REAL = Path("/work/shared/telegrams/real")
TELEGRAMS = sorted(REAL.glob("*.txt"))

# The reference's object names -> our field keys ("delivered" is from the grid, as DSMR-reader).
REFERENCE_KEYS: dict[str, str] = {
    "P1_MESSAGE_HEADER": "dsmr_version",
    "P1_MESSAGE_TIMESTAMP": "timestamp",
    "EQUIPMENT_IDENTIFIER": "equipment_identifier",
    "BELGIUM_EQUIPMENT_IDENTIFIER": "equipment_identifier",
    "EQUIPMENT_SERIAL_NUMBER": "equipment_serial_number",
    "EQUIPMENT_IDENTIFIER_GAS": "equipment_serial_number",  # 0-0:96.1.0 on Iskra IE, misnamed
    "COSEM_LOGICAL_DEVICE_NAME": "logical_device_name",
    "BELGIUM_VERSION_INFORMATION": "version_information",
    "Q3D_EQUIPMENT_IDENTIFIER": "device_address",
    "Q3D_EQUIPMENT_SERIALNUMBER": "equipment_serial",
    "Q3D_EQUIPMENT_STATE": "equipment_state",
    "ELECTRICITY_USED_TARIFF_1": "electricity_delivered_1",
    "ELECTRICITY_USED_TARIFF_2": "electricity_delivered_2",
    "ELECTRICITY_USED_TARIFF_3": "electricity_delivered_3",
    "ELECTRICITY_USED_TARIFF_4": "electricity_delivered_4",
    "ELECTRICITY_DELIVERED_TARIFF_1": "electricity_returned_1",
    "ELECTRICITY_DELIVERED_TARIFF_2": "electricity_returned_2",
    "ELECTRICITY_DELIVERED_TARIFF_3": "electricity_returned_3",
    "ELECTRICITY_DELIVERED_TARIFF_4": "electricity_returned_4",
    "ELECTRICITY_IMPORTED_TOTAL": "electricity_delivered_total",
    "ELECTRICITY_EXPORTED_TOTAL": "electricity_returned_total",
    "ELECTRICITY_COMBINED": "electricity_combined",
    "CURRENT_ELECTRICITY_USAGE": "electricity_currently_delivered",
    "CURRENT_ELECTRICITY_DELIVERY": "electricity_currently_returned",
    "ELECTRICITY_ACTIVE_TARIFF": "electricity_tariff",
    "SHORT_POWER_FAILURE_COUNT": "power_failure_count",
    "LONG_POWER_FAILURE_COUNT": "long_power_failure_count",
    "ACTUAL_SWITCH_POSITION": "switch_position",
    "TEXT_MESSAGE": "text_message",
    "TEXT_MESSAGE_CODE": "text_message_code",
    "BELGIUM_CURRENT_AVERAGE_DEMAND": "current_average_demand",
    "BELGIUM_MAXIMUM_DEMAND_MONTH": "maximum_demand_month",
    "FREQUENCY": "frequency",
    "INSTANTANEOUS_POWER_FACTOR_TOTAL": "power_factor",
    "ELECTRICITY_REACTIVE_IMPORTED_TOTAL": "reactive_energy_imported_total",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_1": "reactive_energy_imported_1",
    "ELECTRICITY_REACTIVE_IMPORTED_TARIFF_2": "reactive_energy_imported_2",
    "ELECTRICITY_REACTIVE_EXPORTED_TOTAL": "reactive_energy_exported_total",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_1": "reactive_energy_exported_1",
    "ELECTRICITY_REACTIVE_EXPORTED_TARIFF_2": "reactive_energy_exported_2",
    "CURRENT_REACTIVE_IMPORTED": "reactive_power_imported",
    "CURRENT_REACTIVE_EXPORTED": "reactive_power_exported",
    **{f"ELECTRICITY_REACTIVE_TOTAL_Q{q}": f"reactive_energy_q{q}" for q in range(1, 5)},
    **{f"INSTANTANEOUS_REACTIVE_POWER_Q{q}": f"reactive_power_q{q}" for q in range(1, 5)},
}
for _n in (1, 2, 3):
    REFERENCE_KEYS |= {
        f"INSTANTANEOUS_ACTIVE_POWER_L{_n}_POSITIVE": f"phase_currently_delivered_l{_n}",
        f"INSTANTANEOUS_ACTIVE_POWER_L{_n}_NEGATIVE": f"phase_currently_returned_l{_n}",
        f"INSTANTANEOUS_VOLTAGE_L{_n}": f"phase_voltage_l{_n}",
        f"INSTANTANEOUS_CURRENT_L{_n}": f"phase_power_current_l{_n}",
        f"INSTANTANEOUS_POWER_FACTOR_L{_n}": f"power_factor_l{_n}",
        f"FUSE_THRESHOLD_L{_n}": f"fuse_threshold_l{_n}",
        f"VOLTAGE_SAG_L{_n}_COUNT": f"voltage_sag_count_l{_n}",
        f"VOLTAGE_SWELL_L{_n}_COUNT": f"voltage_swell_count_l{_n}",
    }
# Same OBIS code, kW on most meters, A on DSMR 3: the reference's unit picks our key.
THRESHOLD_KEYS = {"kW": "power_threshold", "A": "current_threshold"}

MBUS_ATTRIBUTES: dict[str, str] = {
    "MBUS_DEVICE_TYPE": "device_type",
    "DEVICE_TYPE": "device_type",
    "MBUS_EQUIPMENT_IDENTIFIER": "equipment_id",
    "EQUIPMENT_IDENTIFIER_GAS": "equipment_id",
    "EQUIPMENT_IDENTIFIER": "equipment_id",
    "MBUS_VALVE_POSITION": "valve_position",
    "VALVE_POSITION_GAS": "valve_position",
    "MBUS_METER_READING": "reading",
    "GAS_METER_READING": "reading",
    "HOURLY_GAS_METER_READING": "reading",
}

# Powers of ten from our canonical unit back to the unit the meter sent (and the reference kept).
UNIT_SHIFT = {("kW", "W"): 3, ("kWh", "Wh"): 3, ("kvar", "var"): 3, ("kvarh", "varh"): 3}

DELIBERATE_DIFFERENCES: dict[tuple[str, str], str] = {
    (
        "v5_two_mbus",
        "mbus 1 MBUS_METER_READING",
    ): "channel 1 is not linked: it sends (700101010000W)(00000000), the meter's 'never read' "
    "placeholder (1970 and no unit); we read no value instead of 0 at 1970-01-01.",
}


def _load(path: Path) -> tuple[Reading, dict[str, Any]]:
    telegram = path.read_bytes().decode("latin-1")
    expected = json.loads(path.with_suffix("").with_suffix(".expected.json").read_text())
    return parse(telegram), expected


def _same_number(ours: Value | None, our_unit: str | None, ref: Any, ref_unit: str | None) -> None:
    assert isinstance(ours, Decimal), f"expected a Decimal, got {ours!r}"
    shift = 0 if our_unit == ref_unit else UNIT_SHIFT[(our_unit or "-", ref_unit or "-")]
    assert ours.scaleb(shift) == Decimal(str(ref)), f"{ours} {our_unit} vs {ref} {ref_unit}"


def _same_text(ours: Value | None, ref: Any) -> None:
    """Text as sent, or decoded from hex-encoded ASCII (the reference keeps the hex)."""
    assert isinstance(ours, str)
    if ours != str(ref):
        assert ours.encode("ascii").hex().upper() == ref, f"{ours!r} vs {ref!r}"


def _same_time(ours: datetime | None, ref: str) -> None:
    assert ours == datetime.fromisoformat(ref), f"{ours} vs {ref}"
    assert ours is not None and ours.utcoffset() is not None and not ours.utcoffset()


def _check_object(reading: Reading, name: str, ref: dict[str, Any]) -> None:
    """One object of the reference against our reading."""
    if name == "POWER_EVENT_FAILURE_LOG":
        failures = [(f.ended_at, f.duration_s) for f in reading.power_failures]
        theirs = [(datetime.fromisoformat(e["datetime"]), e["value"]) for e in ref["buffer"]]
        assert failures == theirs
        return
    key = THRESHOLD_KEYS[ref["unit"]] if name == "ACTUAL_TRESHOLD_ELECTRICITY" else None
    key = key or REFERENCE_KEYS[name]
    field = FIELDS_BY_KEY[key]
    ours = reading.get(key)
    if ref["value"] is None:
        assert ours is None, f"{name}: reference has no value, we have {ours!r}"
    elif field.kind in ("decimal", "timestamped-decimal"):
        _same_number(ours, field.unit, ref["value"], ref["unit"])
    elif field.kind == "integer":
        assert ours == int(ref["value"])
    elif field.kind == "timestamp":
        assert isinstance(ours, datetime)
        _same_time(ours, ref["value"])
    else:
        _same_text(ours, ref["value"])
    if "datetime" in ref:  # 1-0:1.6.0: the time of this month's peak
        assert field.time_key is not None
        time = reading.get(field.time_key)
        assert isinstance(time, datetime)
        _same_time(time, ref["datetime"])


def _check_mbus(device: MbusDevice | None, name: str, ref: dict[str, Any]) -> None:
    """One M-Bus object of the reference against our device on that channel."""
    assert device is not None
    attribute = MBUS_ATTRIBUTES[name]
    if attribute == "reading":
        _same_number(device.value, device.unit, ref["value"], ref["unit"])
        assert device.unit == ref["unit"]
        assert device.timestamp is not None
        _same_time(device.timestamp, ref["datetime"])
    elif ref["value"] is None:
        assert getattr(device, attribute) is None
    elif attribute == "equipment_id":
        assert device.equipment_id_raw == ref["value"]
        _same_text(device.equipment_id, ref["value"])
    else:
        assert getattr(device, attribute) == int(ref["value"])


def _differences(path: Path) -> list[tuple[str, str, str]]:
    """(where, what the reference reads, the problem) for each mismatch that is not deliberate."""
    reading, expected = _load(path)
    checks: list[tuple[str, dict[str, Any], int | None]]
    checks = [(name, ref, None) for name, ref in expected["objects"].items()]
    checks += [
        (f"mbus {channel} {name}", ref, int(channel))
        for channel, objects in expected["mbus_devices"].items()
        for name, ref in objects.items()
    ]
    problems = []
    for where, ref, channel in checks:
        if (path.stem, where) in DELIBERATE_DIFFERENCES:
            continue
        try:
            if channel is None:
                _check_object(reading, where, ref)
            else:
                _check_mbus(reading.mbus.get(channel), where.split()[-1], ref)
        except (AssertionError, KeyError) as exc:
            problems.append((where, json.dumps(ref), f"{type(exc).__name__}: {exc}"))
    return problems


@pytest.mark.parametrize("path", TELEGRAMS, ids=lambda p: p.stem)
def test_every_reference_value_is_read_the_same(path: Path) -> None:
    assert _differences(path) == []


def test_every_real_telegram_is_covered() -> None:
    # The kit's README lists 13 telegrams; each one has its reference file.
    assert len(TELEGRAMS) == 13
    for path in TELEGRAMS:
        assert path.with_suffix("").with_suffix(".expected.json").exists()


def test_deliberate_differences_really_differ_from_the_reference() -> None:
    """Each listed difference is real: the reference reads a value where we read none."""
    for (stem, where), _reason in DELIBERATE_DIFFERENCES.items():
        reading, expected = _load(REAL / f"{stem}.txt")
        _, channel, name = where.split()
        assert expected["mbus_devices"][channel][name]["value"] is not None
        device = reading.mbus[int(channel)]
        assert (device.value, device.unit, device.timestamp) == (None, None, None)


def test_the_comparison_catches_a_wrong_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard for the guard: one changed value, one changed unit -> reported, nothing else."""
    real_parse = parse

    def slightly_wrong(telegram: str) -> Reading:
        reading = real_parse(telegram)
        reading.values["electricity_delivered_1"] = Decimal("4.427")
        reading.mbus[1].unit = "GJ"
        return reading

    monkeypatch.setattr(f"{__name__}.parse", slightly_wrong)
    where = [problem[0] for problem in _differences(REAL / "v5.txt")]
    assert where == ["ELECTRICITY_USED_TARIFF_1", "mbus 1 MBUS_METER_READING"]
