"""DSMR-reader topics and Home Assistant discovery payloads, built from the field table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dsmr_backend.discovery import DAY_SENSORS, Device, Discovery
from dsmr_backend.fields import fields_in_group, ha_fields
from dsmr_backend.outputs import MeterStats, Outputs, json_payload, split_payloads
from dsmr_backend.parser import parse
from dsmr_backend.settings import BackendSettings
from dsmr_backend.storage.rows import MeterReading
from tests.backend.telegrams import real_telegrams, v5, v5_at

Sent = list[tuple[str, str, int, bool]]


def item(text: str, meter: str = "m1") -> MeterReading:
    reading = parse(text)
    assert reading.timestamp is not None
    return MeterReading(meter, reading.timestamp, reading, text)


def recorder() -> tuple[Sent, object]:
    sent: Sent = []

    def publish(topic: str, payload: str, qos: int, retain: bool) -> None:
        sent.append((topic, payload, qos, retain))

    return sent, publish


def test_split_values_are_formatted_like_dsmr_reader() -> None:
    split = split_payloads(item(v5()), MeterStats(7, "raw"))
    assert split["reading/timestamp"] == "2017-01-02T18:20:02+00:00"
    assert split["reading/electricity_delivered_1"] == "4.426"
    assert split["reading/electricity_currently_delivered"] == "0.244"
    assert split["reading/phase_voltage_l1"] == "230.0"
    assert split["reading/phase_power_current_l3"] == "0.86"
    assert split["reading/extra_device_delivered"] == "0.107"
    assert split["reading/extra_device_timestamp"] == "2017-01-02T15:10:05+00:00"
    assert split["meter-stats/electricity_tariff"] == "2"
    assert split["meter-stats/rejected_telegrams"] == "7"
    assert split["meter-stats/latest_telegram"] == "raw"
    assert "reading/water_delivered" not in split  # absent values are not published


def test_json_has_every_reading_field_with_nulls_and_numbers() -> None:
    document = json_payload(item(v5()))
    assert set(document) == {f.key for f in fields_in_group("reading")} | {"meter"}
    assert document["electricity_delivered_1"] == 4.426
    assert document["water_delivered"] is None
    assert document["meter"] == "m1"
    json.dumps(document)  # serialisable as is


def test_the_default_meter_also_gets_the_plain_topics() -> None:
    sent, publish = recorder()
    outputs = Outputs(publish, "dsmr")  # type: ignore[arg-type]
    outputs.publish_reading(item(v5(), "a"), MeterStats(0, "x"), default=True)
    outputs.publish_reading(item(v5(), "b"), MeterStats(0, "x"), default=False)
    topics = {t for t, *_ in sent}
    assert "dsmr/reading/electricity_delivered_1" in topics
    assert "dsmr/meter/a/reading/electricity_delivered_1" in topics
    assert "dsmr/meter/b/reading/electricity_delivered_1" in topics
    assert not any(t.startswith("dsmr/meter/b") for t in topics if "/a/" in t)
    plain_json = [(q, r) for t, _, q, r in sent if t == "dsmr/json"]
    assert plain_json == [(0, False)]  # only the default meter, never retained
    assert all(r for t, _, _, r in sent if "/reading/" in t or "/meter-stats/" in t)


def test_unchanged_retained_values_are_not_resent_until_a_reconnect() -> None:
    sent, publish = recorder()
    outputs = Outputs(publish, "dsmr")  # type: ignore[arg-type]
    outputs.publish_reading(item(v5_at(0)), MeterStats(0, "x"), default=True)
    sent.clear()
    outputs.publish_reading(item(v5_at(10)), MeterStats(0, "x"), default=True)
    changed = {t for t, *_ in sent}
    assert "dsmr/reading/timestamp" in changed  # the time moved on
    assert "dsmr/reading/electricity_delivered_1" not in changed  # the register did not
    assert "dsmr/json" in changed  # live output: every reading
    sent.clear()
    outputs.forget()
    outputs.publish_reading(item(v5_at(10)), MeterStats(0, "x"), default=True)
    assert "dsmr/reading/electricity_delivered_1" in {t for t, *_ in sent}


def discovery_configs(text: str, **device: object) -> dict[str, dict[str, object]]:
    sent, publish = recorder()
    discovery = Discovery(publish, "dsmr", "homeassistant")  # type: ignore[arg-type]
    reading = parse(text)
    assert discovery.announce(
        Device("m1", reading.meter.header, reading.meter.equipment_id, **device)  # type: ignore[arg-type]
    )
    assert all(qos == 1 and retain for _, _, qos, retain in sent)
    return {topic.split("/")[3]: json.loads(payload) for topic, payload, _, _ in sent}


@pytest.mark.parametrize(
    ("key", "device_class", "state_class", "unit"),
    [
        ("electricity_delivered_1", "energy", "total_increasing", "kWh"),
        ("electricity_returned_2", "energy", "total_increasing", "kWh"),
        ("electricity_currently_delivered", "power", "measurement", "kW"),
        ("extra_device_delivered", "gas", "total_increasing", "m³"),
        ("water_delivered", "water", "total_increasing", "m³"),
        ("phase_voltage_l1", "voltage", "measurement", "V"),
        ("phase_power_current_l2", "current", "measurement", "A"),
    ],
)
def test_sensors_fit_the_energy_dashboard(key: str, device_class: str, state_class: str, unit: str) -> None:
    config = discovery_configs(v5())[key]
    assert config["device_class"] == device_class
    assert config["state_class"] == state_class
    assert config["unit_of_measurement"] == unit


def test_discovery_device_state_availability_and_origin() -> None:
    configs = discovery_configs(v5())
    day_totals = {f"day_{sensor.key}" for sensor in DAY_SENSORS}
    assert set(configs) == {f.key for f in ha_fields() if f.group is not None} | day_totals
    config = configs["electricity_delivered_1"]
    assert config["unique_id"] == "dsmr_K8EG004046395507_electricity_delivered_1"
    assert config["state_topic"] == "dsmr/meter/m1/reading/electricity_delivered_1"
    assert configs["power_failure_count"]["state_topic"] == ("dsmr/meter/m1/meter-stats/power_failure_count")
    assert config["device"] == {
        "identifiers": ["dsmr_K8EG004046395507"],
        "name": "Smart meter m1",
        "manufacturer": "Iskraemeco",
        "model": "ISk5\\2MT382-1000",
        "serial_number": "K8EG004046395507",
    }
    assert config["availability_mode"] == "all"
    assert config["origin"]["name"] == "dsmr-mqtt"  # type: ignore[index]
    assert config["origin"]["sw_version"]  # type: ignore[index]
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)


def test_plain_topic_meters_depend_on_the_backend_only() -> None:
    config = discovery_configs(v5(), via_datalogger=False)["electricity_delivered_1"]
    assert config["availability"] == [{"topic": "dsmr/service/backend/state"}]


def test_a_meter_is_announced_once_and_republished_on_demand() -> None:
    sent, publish = recorder()
    discovery = Discovery(publish, "dsmr", "ha")  # type: ignore[arg-type]
    device = Device("m1", "KFM5KAIFA-METER", None)
    assert discovery.announce(device)
    first = len(sent)
    assert not discovery.announce(device)
    assert len(sent) == first
    assert discovery.republish() == 1
    assert len(sent) == 2 * first
    assert all(t.startswith("ha/sensor/dsmr_m1/") for t, *_ in sent)
    config = json.loads(sent[0][1])
    assert config["device"]["identifiers"] == ["dsmr_m1"]  # no equipment id: the meter name
    assert config["device"]["manufacturer"] == "Kaifa"


def test_every_real_telegram_gives_valid_outputs() -> None:
    received = datetime(2026, 1, 1, tzinfo=UTC)
    for name, text in real_telegrams().items():
        reading = parse(text, received_at=received)
        entry = MeterReading(name, reading.timestamp or received, reading, text)
        assert split_payloads(entry, MeterStats(0, text))["reading/timestamp"]
        json.dumps(json_payload(entry))


def test_settings_defaults_and_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BackendSettings()
    assert settings.database_url == "sqlite:///data/dsmr.sqlite3"
    assert settings.backend_ha_discovery is True
    assert settings.backend_ha_prefix == "homeassistant"
    monkeypatch.setenv("DSMR_BACKEND_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("DSMR_BACKEND_HA_DISCOVERY", "false")
    settings = BackendSettings()
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.backend_ha_discovery is False


def test_day_totals_are_announced_for_the_energy_dashboard() -> None:
    configs = discovery_configs(v5())
    energy = configs["day_electricity_merged"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == (
        "energy",
        "total_increasing",  # resets at midnight: HA takes the drop as a new cycle
        "kWh",
    )
    assert energy["state_topic"] == "dsmr/meter/m1/day-consumption/electricity_merged"
    assert configs["day_gas"]["device_class"] == "gas"
    cost = configs["day_total_cost"]
    assert (cost["device_class"], cost["state_class"], cost["unit_of_measurement"]) == (
        "monetary",
        "total",
        "EUR",
    )
    assert cost["state_topic"] == "dsmr/meter/m1/day-consumption"  # the JSON day totals
    assert cost["value_template"] == "{{ value_json.total_cost }}"
    assert cost["last_reset_value_template"] == "{{ value_json.day_start }}"
