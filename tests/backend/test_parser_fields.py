"""The field table: DSMR-reader's names and groups, units, HA metadata, and that every row parses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from dsmr_backend.fields import (
    FIELDS,
    FIELDS_BY_KEY,
    FIELDS_BY_OBIS,
    ColumnType,
    Kind,
    Source,
    fields_in_group,
    ha_fields,
    stored_fields,
)
from dsmr_backend.parser import parse
from dsmr_shared.crc import crc16

# TOPICS.md: dsmr/reading/<field> and dsmr/meter-stats/<field>, DSMR-reader's names.
DSMR_READER_READING = [
    "timestamp",
    "electricity_delivered_1",
    "electricity_returned_1",
    "electricity_delivered_2",
    "electricity_returned_2",
    "electricity_currently_delivered",
    "electricity_currently_returned",
    *(f"phase_currently_delivered_l{n}" for n in (1, 2, 3)),
    *(f"phase_currently_returned_l{n}" for n in (1, 2, 3)),
    "extra_device_timestamp",
    "extra_device_delivered",
    *(f"phase_voltage_l{n}" for n in (1, 2, 3)),
    *(f"phase_power_current_l{n}" for n in (1, 2, 3)),
]
DSMR_READER_METER_STATS = [
    "dsmr_version",
    "electricity_tariff",
    "power_failure_count",
    "long_power_failure_count",
    *(f"voltage_sag_count_l{n}" for n in (1, 2, 3)),
    *(f"voltage_swell_count_l{n}" for n in (1, 2, 3)),
    "rejected_telegrams",
    "latest_telegram",
]


def test_dsmr_reader_fields_are_in_their_topic_groups() -> None:
    reading = [f.key for f in fields_in_group("reading")]
    assert set(DSMR_READER_READING) <= set(reading)
    assert [f.key for f in fields_in_group("meter-stats")] == DSMR_READER_METER_STATS
    assert len(FIELDS_BY_KEY) == len(FIELDS)


def test_units_decimals_and_home_assistant_metadata() -> None:
    for key in ("electricity_delivered_1", "electricity_returned_2", "electricity_delivered_total"):
        row = FIELDS_BY_KEY[key]
        assert row.ha is not None
        assert (row.unit, row.decimals) == ("kWh", 3)
        assert (row.ha.device_class, row.ha.state_class, row.ha.unit) == ("energy", "total_increasing", "kWh")
    for key in ("electricity_currently_delivered", "phase_currently_returned_l3"):
        row = FIELDS_BY_KEY[key]
        assert row.ha is not None
        assert (row.unit, row.ha.device_class, row.ha.state_class, row.ha.unit) == (
            "kW",
            "power",
            "measurement",
            "kW",
        )
    voltage, current = FIELDS_BY_KEY["phase_voltage_l1"], FIELDS_BY_KEY["phase_power_current_l2"]
    assert voltage.ha is not None and current.ha is not None
    assert (voltage.decimals, voltage.ha.device_class, voltage.ha.state_class) == (
        1,
        "voltage",
        "measurement",
    )
    assert (current.decimals, current.ha.device_class, current.ha.state_class) == (
        None,
        "current",
        "measurement",
    )
    gas = FIELDS_BY_KEY["extra_device_delivered"]
    assert gas.ha is not None
    assert (gas.source, gas.mbus_type, gas.unit) == (Source.MBUS, 3, "m3")
    assert (gas.ha.device_class, gas.ha.state_class, gas.ha.unit) == ("gas", "total_increasing", "m³")
    water = FIELDS_BY_KEY["water_delivered"]
    assert water.ha is not None and (water.ha.device_class, water.ha.unit) == ("water", "m³")
    assert all(f.ha is not None for f in ha_fields())


def test_every_stored_field_has_a_column_of_its_kind() -> None:
    expected = {
        Kind.DECIMAL: ColumnType.NUMERIC,
        Kind.TIMESTAMPED_DECIMAL: ColumnType.NUMERIC,
        Kind.INTEGER: ColumnType.INTEGER,
        Kind.TEXT: ColumnType.TEXT,
        Kind.HEX_TEXT: ColumnType.TEXT,
        Kind.TIMESTAMP: ColumnType.DATETIME,
    }
    for row in stored_fields():
        assert row.column is not None
        assert row.column.type is expected[row.kind], row.key
    assert FIELDS_BY_KEY["rejected_telegrams"].column is None  # the service's own counter


def test_format_value_follows_dsmr_reader() -> None:
    energy, voltage = FIELDS_BY_KEY["electricity_delivered_1"], FIELDS_BY_KEY["phase_voltage_l1"]
    assert energy.format_value(Decimal("4.4")) == "4.400"
    assert voltage.format_value(Decimal("230.04")) == "230.0"
    stamp = FIELDS_BY_KEY["timestamp"].format_value(datetime(2026, 11, 25, 18, 6, tzinfo=UTC))
    assert stamp == "2026-11-25T18:06:00+00:00"
    assert energy.json_value(Decimal("4.4")) == 4.4
    assert energy.json_value(None) is None
    assert FIELDS_BY_KEY["electricity_tariff"].json_value(2) == 2


def _sample(obis: str) -> str:
    """A value line for one OBIS code, in its rows' first kind and unit."""
    row = FIELDS_BY_OBIS[obis][0]
    if row.kind is Kind.DECIMAL:
        return f"{obis}(000012.345{'*' + row.unit if row.unit else ''})"
    if row.kind is Kind.TIMESTAMPED_DECIMAL:
        return f"{obis}(261125190000W)(01.234*{row.unit})"
    if row.kind is Kind.INTEGER:
        return f"{obis}(00042)"
    if row.kind is Kind.TIMESTAMP:
        return f"{obis}(261125190000W)"
    return f"{obis}(4B38)"


def test_every_line_row_of_the_table_parses() -> None:
    """One telegram with a line for every OBIS code of the table: each row gets its value."""
    lines = [_sample(obis) for obis in FIELDS_BY_OBIS]
    text = "/TST5\\2ALL-FIELDS\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!"
    text += f"{crc16(text.encode('latin-1')):04X}\r\n"
    reading = parse(text)
    for obis, rows in FIELDS_BY_OBIS.items():
        row = rows[0]
        assert row.key in reading.values, obis
        if row.time_key is not None:
            assert reading.values[row.time_key] == datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert reading.values["electricity_delivered_1"] == Decimal("12.345")
    assert reading.values["equipment_identifier"] == "K8"
    assert reading.extras == {}
