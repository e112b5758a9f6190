"""The one table of fields: it drives parsing, the reading model, storage, topics and HA discovery.

Adding a field is adding one ``Field`` row to ``FIELDS`` below; nothing else needs to change.

How to use the table:

- ``FIELDS``: every row, in a stable order (the order topics and columns are emitted in).
- ``FIELDS_BY_KEY["electricity_delivered_1"]``: one row by its key.
- ``fields_in_group("reading")`` / ``fields_in_group("meter-stats")``: the rows published under
  ``dsmr/reading/<key>`` and ``dsmr/meter-stats/<key>`` (TOPICS.md), in table order.
- ``stored_fields()``: the rows that have a storage ``column`` (type, precision, scale).
- ``ha_fields()``: the rows exposed to Home Assistant discovery (``row.ha`` is not None).
- ``row.format_value(value)``: the text for a split topic (``decimals`` applied, datetimes as
  ISO 8601 UTC); ``row.json_value(value)``: the same as a JSON number/string.

Where a row's value comes from (``source``):

- ``Source.LINE``: the telegram line with OBIS code ``obis`` (the parser dispatches on it).
  Several rows may share one OBIS code when a meter may send it in different, non-convertible
  units (``0-0:17.0.0`` is kW on most meters, A on DSMR 3); the sent unit picks the row.
- ``Source.LINE_TIME``: the leading timestamp of the ``TIMESTAMPED_DECIMAL`` row named by ``obis``
  (``1-0:1.6.0(time)(value*kW)`` gives ``maximum_demand_month`` and ``..._timestamp``).
- ``Source.MBUS``: the first M-Bus device of type ``mbus_type`` (3 gas, 4 heat, 7 water): its
  reading (kind DECIMAL) or its reading's timestamp (kind TIMESTAMP). This is how DSMR-reader's
  ``extra_device_delivered`` / ``extra_device_timestamp`` are filled.
- ``Source.SERVICE``: not in a telegram; the backend fills it (``rejected_telegrams``,
  ``latest_telegram``). Listed here so the meter-stats topics come from the table too.

Values in ``Reading.values`` have the type of their ``kind``: ``Decimal`` (DECIMAL, in the row's
canonical ``unit``), ``int`` (INTEGER), ``str`` (TEXT, HEX_TEXT decoded), aware UTC ``datetime``
(TIMESTAMP). Units sent in another scale are converted exactly (``Wh``->``kWh``, ``W``->``kW``,
``varh``->``kvarh``, ``var``->``kvar``) by ``UNIT_CONVERSIONS``.

Keys follow DSMR-reader where it has the field ("delivered" = taken from the grid, OBIS x.8.x with
x=1; "returned" = fed back, x=2). Fields DSMR-reader lacks have plain snake_case names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

Value = Decimal | int | str | datetime
"""A parsed value: see the module docstring for which kind gives which type."""

Group = Literal["reading", "meter-stats"]
"""The output topic group of a field (``dsmr/reading/<key>`` or ``dsmr/meter-stats/<key>``)."""


class Kind(StrEnum):
    """How the text between the brackets is read."""

    DECIMAL = "decimal"  # "000004.426*kWh" -> Decimal in the canonical unit
    INTEGER = "integer"  # "00013" -> int
    TEXT = "text"  # kept as sent
    HEX_TEXT = "hex-text"  # hex-encoded ASCII decoded ("4B38..." -> "K8..."), else kept as sent
    TIMESTAMP = "timestamp"  # "YYMMDDhhmmssS" Dutch local time -> aware UTC datetime
    TIMESTAMPED_DECIMAL = "timestamped-decimal"  # "(time)(value*unit)"; time goes to time_key


class Source(StrEnum):
    """Where a row's value comes from (see the module docstring)."""

    LINE = "line"
    LINE_TIME = "line-time"
    MBUS = "mbus"
    SERVICE = "service"


class ColumnType(StrEnum):
    """Storage type of a column; the storage layer maps it onto SQLAlchemy types."""

    NUMERIC = "numeric"
    INTEGER = "integer"
    TEXT = "text"
    DATETIME = "datetime"  # timezone-aware, stored as UTC


@dataclass(frozen=True, slots=True)
class Column:
    """A storage column: type, and for NUMERIC its precision (total digits) and scale."""

    type: ColumnType
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True, slots=True)
class HaSensor:
    """Home Assistant MQTT discovery metadata of one sensor."""

    name: str
    device_class: str | None
    state_class: str | None
    unit: str | None
    icon: str | None = None
    entity_category: Literal["diagnostic"] | None = None
    enabled_by_default: bool = True


@dataclass(frozen=True, slots=True)
class Field:
    """One row of the table: a value a telegram (or the service) gives, and how to treat it."""

    key: str
    obis: str | None
    kind: Kind
    unit: str | None
    decimals: int | None  # decimals when publishing; None = as sent (or not a number)
    group: Group | None
    column: Column | None
    ha: HaSensor | None
    label: str
    source: Source = Source.LINE
    mbus_type: int | None = None  # Source.MBUS: M-Bus device type (3 gas, 4 heat, 7 water)
    time_key: str | None = None  # Kind.TIMESTAMPED_DECIMAL: key of the row holding the time

    def format_value(self, value: Value) -> str:
        """Render a value for a split MQTT topic (DSMR-reader style)."""
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, Decimal) and self.decimals is not None:
            return f"{value:.{self.decimals}f}"
        return str(value)

    def json_value(self, value: Value | None) -> float | int | str | None:
        """Render a value for a JSON payload: numbers as numbers, absent as None."""
        if value is None:
            return None
        if isinstance(value, Decimal):
            return float(self.format_value(value))
        if isinstance(value, int | str):
            return value
        return self.format_value(value)


UNIT_CONVERSIONS: dict[str, tuple[str, int]] = {
    "Wh": ("kWh", -3),
    "W": ("kW", -3),
    "varh": ("kvarh", -3),
    "var": ("kvar", -3),
}
"""Sent unit -> (canonical unit, power-of-ten shift): exact via ``Decimal.scaleb``."""

MBUS_DEVICE_TYPES: dict[int, str] = {3: "gas", 4: "heat", 7: "water"}
"""M-Bus device type codes the system knows by name."""

EQUIPMENT_ID_KEYS: tuple[str, ...] = (
    "equipment_identifier",
    "equipment_serial_number",
    "equipment_serial",
    "device_address",
)
"""Keys tried in order for the meter's identity (the first present wins)."""

# Column shapes: energy keeps EasyMeter's 7 decimals, power the 5 a W->kW conversion can give.
_ENERGY = Column(ColumnType.NUMERIC, 18, 7)
_POWER = Column(ColumnType.NUMERIC, 12, 5)
_VOLT = Column(ColumnType.NUMERIC, 8, 2)
_AMP = Column(ColumnType.NUMERIC, 8, 2)
_VOLUME = Column(ColumnType.NUMERIC, 14, 3)
_RATIO = Column(ColumnType.NUMERIC, 8, 3)
_INT = Column(ColumnType.INTEGER)
_TEXT = Column(ColumnType.TEXT)
_TIME = Column(ColumnType.DATETIME)

_PHASES = ("l1", "l2", "l3")


def _energy(key: str, obis: str, label: str, *, ha: bool = True) -> Field:
    """An active-energy register (kWh, total_increasing)."""
    sensor = HaSensor(label, "energy", "total_increasing", "kWh") if ha else None
    return Field(key, obis, Kind.DECIMAL, "kWh", 3, "reading", _ENERGY, sensor, label)


def _power(key: str, obis: str, label: str) -> Field:
    """An active-power value (kW, measurement)."""
    sensor = HaSensor(label, "power", "measurement", "kW")
    return Field(key, obis, Kind.DECIMAL, "kW", 3, "reading", _POWER, sensor, label)


def _reactive(key: str, obis: str, label: str, unit: str) -> Field:
    """A reactive energy (kvarh) or power (kvar) value; not in DSMR-reader, so no topic group."""
    if unit == "kvarh":
        sensor = HaSensor(label, None, "total_increasing", unit, enabled_by_default=False)
        return Field(key, obis, Kind.DECIMAL, unit, 3, None, _ENERGY, sensor, label)
    sensor = HaSensor(label, "reactive_power", "measurement", "kvar", enabled_by_default=False)
    return Field(key, obis, Kind.DECIMAL, unit, 3, None, _POWER, sensor, label)


def _counter(key: str, obis: str, label: str) -> Field:
    """An event counter published under meter-stats."""
    sensor = HaSensor(label, None, "total_increasing", None, "mdi:counter", "diagnostic")
    return Field(key, obis, Kind.INTEGER, None, None, "meter-stats", _INT, sensor, label)


def _info(key: str, obis: str, label: str, kind: Kind = Kind.TEXT) -> Field:
    """Meter information: stored, not published, not in Home Assistant."""
    return Field(key, obis, kind, None, None, None, _TEXT, None, label)


def _phase_rows() -> tuple[Field, ...]:
    """Per-phase power, voltage and current rows for L1..L3 (OBIS 21/41/61, 22/42/62, ...)."""
    rows: list[Field] = []
    for n, phase in enumerate(_PHASES):
        base = 20 * n
        name = phase.upper()
        rows.append(_power(f"phase_currently_delivered_{phase}", f"1-0:{21 + base}.7.0", f"Power {name}"))
    for n, phase in enumerate(_PHASES):
        base = 20 * n
        name = phase.upper()
        rows.append(
            _power(
                f"phase_currently_returned_{phase}",
                f"1-0:{22 + base}.7.0",
                f"Power returned {name}",
            )
        )
    for n, phase in enumerate(_PHASES):
        label = f"Voltage {phase.upper()}"
        sensor = HaSensor(label, "voltage", "measurement", "V")
        obis = f"1-0:{32 + 20 * n}.7.0"
        rows.append(
            Field(f"phase_voltage_{phase}", obis, Kind.DECIMAL, "V", 1, "reading", _VOLT, sensor, label)
        )
    for n, phase in enumerate(_PHASES):
        label = f"Current {phase.upper()}"
        sensor = HaSensor(label, "current", "measurement", "A")
        obis = f"1-0:{31 + 20 * n}.7.0"
        key = f"phase_power_current_{phase}"
        rows.append(Field(key, obis, Kind.DECIMAL, "A", None, "reading", _AMP, sensor, label))
    return tuple(rows)


def _stats_rows() -> tuple[Field, ...]:
    """DSMR-reader's meter statistics (dsmr/meter-stats/<key>)."""
    version_ha = HaSensor("DSMR version", None, None, None, "mdi:information", "diagnostic")
    tariff_ha = HaSensor("Tariff", None, None, None, "mdi:swap-horizontal")
    rows = [
        Field(
            "dsmr_version", "1-3:0.2.8", Kind.TEXT, None, None, "meter-stats", _TEXT, version_ha,
            "DSMR version",
        ),
        Field(
            "electricity_tariff", "0-0:96.14.0", Kind.INTEGER, None, None, "meter-stats", _INT,
            tariff_ha, "Tariff",
        ),
        _counter("power_failure_count", "0-0:96.7.21", "Power failures"),
        _counter("long_power_failure_count", "0-0:96.7.9", "Long power failures"),
    ]  # fmt: skip
    for n, phase in enumerate(_PHASES):
        obis = f"1-0:{32 + 20 * n}.32.0"
        rows.append(_counter(f"voltage_sag_count_{phase}", obis, f"Voltage sags {phase.upper()}"))
    for n, phase in enumerate(_PHASES):
        obis = f"1-0:{32 + 20 * n}.36.0"
        label = f"Voltage swells {phase.upper()}"
        rows.append(_counter(f"voltage_swell_count_{phase}", obis, label))
    rejected_ha = HaSensor("Rejected telegrams", None, "total_increasing", None, "mdi:alert",
                           "diagnostic")  # fmt: skip
    rows.append(
        Field(
            "rejected_telegrams", None, Kind.INTEGER, None, None, "meter-stats", None,
            rejected_ha, "Rejected telegrams", Source.SERVICE,
        )
    )  # fmt: skip
    rows.append(
        Field(
            "latest_telegram", None, Kind.TEXT, None, None, "meter-stats", None, None,
            "Latest telegram", Source.SERVICE,
        )
    )  # fmt: skip
    return tuple(rows)


def _mbus_rows() -> tuple[Field, ...]:
    """Values taken from the first M-Bus device of a type (gas is DSMR-reader's extra device)."""
    gas_ha = HaSensor("Gas", "gas", "total_increasing", "m³")
    water_ha = HaSensor("Water", "water", "total_increasing", "m³")
    heat_ha = HaSensor("Heat", "energy", "total_increasing", "GJ")
    return (
        Field("extra_device_timestamp", None, Kind.TIMESTAMP, None, None, "reading", _TIME,
              None, "Gas reading time", Source.MBUS, 3),
        Field("extra_device_delivered", None, Kind.DECIMAL, "m3", 3, "reading", _VOLUME,
              gas_ha, "Gas", Source.MBUS, 3),
        Field("water_timestamp", None, Kind.TIMESTAMP, None, None, "reading", _TIME,
              None, "Water reading time", Source.MBUS, 7),
        Field("water_delivered", None, Kind.DECIMAL, "m3", 3, "reading", _VOLUME,
              water_ha, "Water", Source.MBUS, 7),
        Field("heat_timestamp", None, Kind.TIMESTAMP, None, None, "reading", _TIME,
              None, "Heat reading time", Source.MBUS, 4),
        Field("heat_delivered", None, Kind.DECIMAL, "GJ", 3, "reading", _VOLUME,
              heat_ha, "Heat", Source.MBUS, 4),
    )  # fmt: skip


def _belgian_rows() -> tuple[Field, ...]:
    """Belgian capacity tariff: current quarter-hour average and this month's peak."""
    avg_ha = HaSensor("Current average demand", "power", "measurement", "kW")
    max_ha = HaSensor("Peak demand this month", "power", "measurement", "kW")
    return (
        Field("current_average_demand", "1-0:1.4.0", Kind.DECIMAL, "kW", 3, "reading", _POWER,
              avg_ha, "Current average demand"),
        Field("maximum_demand_month", "1-0:1.6.0", Kind.TIMESTAMPED_DECIMAL, "kW", 3, "reading",
              _POWER, max_ha, "Peak demand this month",
              time_key="maximum_demand_month_timestamp"),
        Field("maximum_demand_month_timestamp", "1-0:1.6.0", Kind.TIMESTAMP, None, None,
              "reading", _TIME, None, "Peak demand time", Source.LINE_TIME),
    )  # fmt: skip


def _reactive_rows() -> tuple[Field, ...]:
    """Reactive energy and power (Sagemcom Austria, E.ON Hungary)."""
    rows = [
        _reactive("reactive_energy_imported_total", "1-0:3.8.0", "Reactive energy imported",
                  "kvarh"),
        _reactive("reactive_energy_imported_1", "1-0:3.8.1", "Reactive energy imported 1",
                  "kvarh"),
        _reactive("reactive_energy_imported_2", "1-0:3.8.2", "Reactive energy imported 2",
                  "kvarh"),
        _reactive("reactive_energy_exported_total", "1-0:4.8.0", "Reactive energy exported",
                  "kvarh"),
        _reactive("reactive_energy_exported_1", "1-0:4.8.1", "Reactive energy exported 1",
                  "kvarh"),
        _reactive("reactive_energy_exported_2", "1-0:4.8.2", "Reactive energy exported 2",
                  "kvarh"),
        _reactive("reactive_power_imported", "1-0:3.7.0", "Reactive power imported", "kvar"),
        _reactive("reactive_power_exported", "1-0:4.7.0", "Reactive power exported", "kvar"),
    ]  # fmt: skip
    for quadrant in range(1, 5):
        rows.append(
            _reactive(f"reactive_energy_q{quadrant}", f"1-0:{4 + quadrant}.8.0",
                      f"Reactive energy Q{quadrant}", "kvarh")
        )  # fmt: skip
    for quadrant in range(1, 5):
        rows.append(
            _reactive(f"reactive_power_q{quadrant}", f"1-0:{4 + quadrant}.7.0",
                      f"Reactive power Q{quadrant}", "kvar")
        )  # fmt: skip
    return tuple(rows)


def _quality_rows() -> tuple[Field, ...]:
    """Power factor, frequency, thresholds and fuses."""
    pf_ha = HaSensor("Power factor", "power_factor", "measurement", None,
                     enabled_by_default=False)  # fmt: skip
    rows = [
        Field("power_factor", "1-0:13.7.0", Kind.DECIMAL, None, 3, None, _RATIO, pf_ha,
              "Power factor"),
        Field("frequency", "1-0:14.7.0", Kind.DECIMAL, "Hz", 2, None, _RATIO,
              HaSensor("Frequency", "frequency", "measurement", "Hz"), "Frequency"),
        Field("power_threshold", "0-0:17.0.0", Kind.DECIMAL, "kW", 3, None, _POWER, None,
              "Power limiter threshold"),
        # DSMR 3 meters send the limiter threshold as a current: same OBIS, picked by unit.
        Field("current_threshold", "0-0:17.0.0", Kind.DECIMAL, "A", None, None, _AMP, None,
              "Current limiter threshold"),
    ]  # fmt: skip
    for n, phase in enumerate(_PHASES):
        label = f"Power factor {phase.upper()}"
        sensor = HaSensor(label, "power_factor", "measurement", None, enabled_by_default=False)
        obis = f"1-0:{33 + 20 * n}.7.0"
        rows.append(Field(f"power_factor_{phase}", obis, Kind.DECIMAL, None, 3, None, _RATIO, sensor, label))
    for n, phase in enumerate(_PHASES):
        obis = f"1-0:{31 + 20 * n}.4.0"
        label = f"Fuse threshold {phase.upper()}"
        rows.append(Field(f"fuse_threshold_{phase}", obis, Kind.DECIMAL, "A", None, None, _AMP,
                          None, label))  # fmt: skip
    return tuple(rows)


def _identity_rows() -> tuple[Field, ...]:
    """Meter identity, switch position and messages."""
    return (
        _info("equipment_identifier", "0-0:96.1.1", "Equipment identifier", Kind.HEX_TEXT),
        _info("equipment_serial_number", "0-0:96.1.0", "Equipment serial number",
              Kind.HEX_TEXT),
        _info("logical_device_name", "0-0:42.0.0", "COSEM logical device name", Kind.HEX_TEXT),
        _info("version_information", "0-0:96.1.4", "Version information"),
        _info("device_address", "1-0:0.0.0", "Device address"),
        _info("equipment_serial", "0-0:96.1.255", "Equipment serial (EasyMeter)"),
        _info("equipment_state", "1-0:96.5.5", "Equipment state (EasyMeter)"),
        Field("switch_position", "0-0:96.3.10", Kind.INTEGER, None, None, None, _INT, None,
              "Breaker switch position"),
        _info("text_message_code", "0-0:96.13.1", "Text message code"),
        _info("text_message", "0-0:96.13.0", "Text message", Kind.HEX_TEXT),
    )  # fmt: skip


def _electricity_rows() -> tuple[Field, ...]:
    """DSMR-reader's reading fields plus extra tariffs and totals."""
    ts_ha = HaSensor("Telegram time", "timestamp", None, None, "mdi:clock", "diagnostic")
    return (
        Field("timestamp", "0-0:1.0.0", Kind.TIMESTAMP, None, None, "reading", _TIME, ts_ha,
              "Telegram time"),
        _energy("electricity_delivered_1", "1-0:1.8.1", "Electricity delivered tariff 1"),
        _energy("electricity_returned_1", "1-0:2.8.1", "Electricity returned tariff 1"),
        _energy("electricity_delivered_2", "1-0:1.8.2", "Electricity delivered tariff 2"),
        _energy("electricity_returned_2", "1-0:2.8.2", "Electricity returned tariff 2"),
        _power("electricity_currently_delivered", "1-0:1.7.0", "Power delivered"),
        _power("electricity_currently_returned", "1-0:2.7.0", "Power returned"),
        _energy("electricity_delivered_3", "1-0:1.8.3", "Electricity delivered tariff 3"),
        _energy("electricity_returned_3", "1-0:2.8.3", "Electricity returned tariff 3"),
        _energy("electricity_delivered_4", "1-0:1.8.4", "Electricity delivered tariff 4"),
        _energy("electricity_returned_4", "1-0:2.8.4", "Electricity returned tariff 4"),
        _energy("electricity_delivered_total", "1-0:1.8.0", "Electricity delivered total"),
        _energy("electricity_returned_total", "1-0:2.8.0", "Electricity returned total"),
        _energy("electricity_combined", "1-0:15.8.0", "Electricity combined", ha=False),
    )  # fmt: skip


FIELDS: tuple[Field, ...] = (
    _electricity_rows()
    + _phase_rows()
    + _mbus_rows()
    + _belgian_rows()
    + _stats_rows()
    + _quality_rows()
    + _reactive_rows()
    + _identity_rows()
)
"""Every field, in publishing order."""

FIELDS_BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
"""Rows by key."""


def _by_obis() -> dict[str, tuple[Field, ...]]:
    """Line rows by OBIS code (several rows when the sent unit picks the row)."""
    table: dict[str, tuple[Field, ...]] = {}
    for row in FIELDS:
        if row.source is Source.LINE and row.obis is not None:
            table[row.obis] = (*table.get(row.obis, ()), row)
    return table


FIELDS_BY_OBIS: dict[str, tuple[Field, ...]] = _by_obis()
"""Rows read from telegram lines, by OBIS code (``"1-0:1.8.1"``)."""


def fields_in_group(group: Group) -> tuple[Field, ...]:
    """The rows published under one topic group, in table order."""
    return tuple(f for f in FIELDS if f.group == group)


def stored_fields() -> tuple[Field, ...]:
    """The rows that have a storage column, in table order."""
    return tuple(f for f in FIELDS if f.column is not None)


def ha_fields() -> tuple[Field, ...]:
    """The rows exposed to Home Assistant discovery, in table order."""
    return tuple(f for f in FIELDS if f.ha is not None)


def _check_table() -> None:
    """Fail at import on a malformed table (duplicate keys, dangling time keys)."""
    if len(FIELDS_BY_KEY) != len(FIELDS):
        raise ValueError("duplicate key in the field table")
    for row in FIELDS:
        if row.time_key is not None and row.time_key not in FIELDS_BY_KEY:
            raise ValueError(f"{row.key}: time_key {row.time_key} has no row")
        if row.source is Source.MBUS and row.mbus_type is None:
            raise ValueError(f"{row.key}: an M-Bus row needs mbus_type")


_check_table()
