"""Settings: serial presets and overrides, the meter name, --help and bad values."""

import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from dsmr_datalogger.config import SerialParams
from dsmr_datalogger.meter import meter_name_of
from dsmr_datalogger.settings import DataloggerSettings, simulator_config
from dsmr_shared.meters import decode_hex_text
from dsmr_shared.settings import env_name
from tests.datalogger.telegram_text import real_telegrams
from tests.helpers import console_script


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.2", SerialParams(9600, 7, "E", 1)),
        ("3", SerialParams(9600, 7, "E", 1)),
        ("4", SerialParams(115200, 8, "N", 1)),
        ("4.2", SerialParams(115200, 8, "N", 1)),
        ("5", SerialParams(115200, 8, "N", 1)),
        ("BE", SerialParams(115200, 8, "N", 1)),
        ("lu", SerialParams(115200, 8, "N", 1)),
    ],
)
def test_dsmr_version_presets(monkeypatch: pytest.MonkeyPatch, version: str, expected: SerialParams) -> None:
    monkeypatch.setenv("DSMR_DATALOGGER_DSMR_VERSION", version)
    assert DataloggerSettings().serial_params == expected


def test_each_serial_parameter_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMR_DATALOGGER_DSMR_VERSION", "3")
    monkeypatch.setenv("DSMR_DATALOGGER_BAUDRATE", "115200")
    monkeypatch.setenv("DSMR_DATALOGGER_BYTESIZE", "8")
    monkeypatch.setenv("DSMR_DATALOGGER_PARITY", "n")
    monkeypatch.setenv("DSMR_DATALOGGER_STOPBITS", "2")
    assert DataloggerSettings().serial_params == SerialParams(115200, 8, "N", 2)


def test_defaults_read_the_simulator_and_spool_next_to_the_working_directory() -> None:
    settings = DataloggerSettings()
    assert settings.datalogger_port == "simulate"
    assert settings.datalogger_meter is None
    assert settings.spool_max_bytes == 100 * 1024 * 1024


def test_a_naive_simulator_start_is_dutch_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMR_DATALOGGER_SIMULATE_START", "2026-07-01T12:00:00")
    monkeypatch.setenv("DSMR_DATALOGGER_SIMULATE_SOLAR", "false")
    config = simulator_config(DataloggerSettings())
    assert config.start == datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert not config.solar


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("4B384547303034303436333935353037", "K8EG004046395507"),  # hex ASCII
        ("1ESY1313002565", "1ESY1313002565"),  # plain text
        ("00000000000000", "00000000000000"),  # hex, but not printable
        ("09610", "09610"),  # odd length
    ],
)
def test_equipment_ids_are_hex_decoded_only_when_they_are_hex_ascii(raw: str, text: str) -> None:
    assert decode_hex_text(raw) == text


def test_meter_names_of_the_real_telegrams_are_topic_safe_and_from_the_electricity_meter() -> None:
    names = {t.name: meter_name_of(t.raw) for t in real_telegrams()}
    assert names["v5_two_mbus"] == "E0044007382246019"  # 0-0:96.1.1, not the M-Bus 0-1:96.1.0
    assert names["iskra_ie"] == "09610"  # Belgian 0-0:96.1.0
    assert names["esy5q3db1024_v304"] == "1ESY1313002565"  # German 0-0:96.1.255*255
    assert names["sagemcom_t210_d_r"] == "meter"
    assert all(n and not set(n) & set("/+# ") for n in names.values())


def test_a_meter_name_that_is_not_one_topic_level_is_refused() -> None:
    result = subprocess.run(
        [console_script("dsmr-datalogger")],
        env={"DSMR_DATALOGGER_METER": "my/meter", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "DSMR_DATALOGGER_METER" in result.stderr and "my_meter" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DSMR_DATALOGGER_DSMR_VERSION", "7"),
        ("DSMR_DATALOGGER_STOPBITS", "3"),
        ("DSMR_DATALOGGER_REPLAY_SPEED", "-1"),
        ("DSMR_DATALOGGER_PORT", "file:"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_the_variable(variable: str, value: str) -> None:
    result = subprocess.run(
        [console_script("dsmr-datalogger")],
        env={variable: value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("dsmr-datalogger: bad setting: ")
    assert variable in result.stderr and result.stderr.count("\n") == 1


def test_help_explains_every_setting() -> None:
    result = subprocess.run(
        [console_script("dsmr-datalogger"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for name, field in DataloggerSettings.model_fields.items():
        assert env_name(DataloggerSettings, name) in result.stdout
        assert field.description and field.description.split()[0] in result.stdout
    assert "socket://" in result.stdout and "file:PATH" in result.stdout
