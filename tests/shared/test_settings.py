"""Settings: DSMR_ variables, .env, *_FILE secrets, one clear line on a bad value."""

import subprocess
import sys
from pathlib import Path

import pytest

from dsmr_shared.cli import settings_help
from dsmr_shared.settings import ServiceSettings, load_settings


def run_load(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "from dsmr_shared.settings import *; print(load_settings(ServiceSettings, 'x').mqtt_port)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_defaults() -> None:
    s = ServiceSettings()
    assert (s.mqtt_host, s.mqtt_port, s.topic_prefix, s.mqtt_protocol) == ("127.0.0.1", 1883, "dsmr", "5")


def test_variables_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMR_MQTT_HOST", "broker")
    monkeypatch.setenv("DSMR_MQTT_PORT", "8883")
    monkeypatch.setenv("DSMR_TOPIC_PREFIX", "home/meter")
    monkeypatch.setenv("DSMR_LOG_LEVEL", "debug")
    s = ServiceSettings()
    assert (s.mqtt_host, s.mqtt_port, s.topic_prefix, s.log_level) == ("broker", 8883, "home/meter", "DEBUG")


def test_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DSMR_MQTT_PORT=1999\n")
    assert ServiceSettings().mqtt_port == 1999


def test_password_from_file_never_in_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    monkeypatch.setenv("DSMR_MQTT_PASSWORD_FILE", str(secret))
    s = ServiceSettings()
    assert s.mqtt_password is not None and s.mqtt_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


def test_bad_value_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run_load({"DSMR_MQTT_PORT": "eighty"}, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DSMR_MQTT_PORT" in lines[0]


def test_missing_secret_file_is_one_line(tmp_path: Path) -> None:
    result = run_load({"DSMR_MQTT_PASSWORD_FILE": str(tmp_path / "nope")}, tmp_path)
    assert result.returncode == 2
    assert "DSMR_MQTT_PASSWORD_FILE" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_password_value_is_not_echoed(tmp_path: Path) -> None:
    result = run_load({"DSMR_MQTT_PORT": "0", "DSMR_MQTT_PASSWORD": "topsecret"}, tmp_path)
    assert result.returncode == 2 and "topsecret" not in result.stderr


def test_tls_files_must_exist_and_pair(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DSMR_MQTT_TLS_CA_FILE", str(tmp_path / "missing.pem"))
    result = run_load({"DSMR_MQTT_TLS_CA_FILE": str(tmp_path / "missing.pem")}, tmp_path)
    assert "DSMR_MQTT_TLS_CA_FILE" in result.stderr
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    result = run_load({"DSMR_MQTT_TLS_CERT_FILE": str(cert)}, tmp_path)
    assert result.returncode == 2 and "DSMR_MQTT_TLS_KEY_FILE" in result.stderr


def test_wildcards_in_prefix_are_refused() -> None:
    with pytest.raises(ValueError, match="topic_prefix"):
        ServiceSettings(topic_prefix="a/#")


def test_help_lists_every_variable() -> None:
    text = settings_help(ServiceSettings)
    for name in ServiceSettings.model_fields:
        assert f"DSMR_{name.upper()}" in text
    assert "_FILE" in text


def test_load_settings_returns_instance() -> None:
    assert load_settings(ServiceSettings, "x").mqtt_port == 1883


def test_a_variable_wins_over_dotenv_which_wins_over_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host_file = tmp_path / "host"
    host_file.write_text("from-file\n")
    monkeypatch.setenv("DSMR_MQTT_HOST_FILE", str(host_file))
    assert ServiceSettings().mqtt_host == "from-file"
    (tmp_path / ".env").write_text("DSMR_MQTT_HOST=from-dotenv\n")
    assert ServiceSettings().mqtt_host == "from-dotenv"
    monkeypatch.setenv("DSMR_MQTT_HOST", "from-variable")
    assert ServiceSettings().mqtt_host == "from-variable"
    assert ServiceSettings(mqtt_host="from-argument").mqtt_host == "from-argument"


def test_names_are_case_insensitive_and_unknown_ones_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("dsmr_mqtt_port", "1884")
    monkeypatch.setenv("DSMR_NO_SUCH_SETTING", "x")
    assert ServiceSettings().mqtt_port == 1884


def test_a_secret_file_named_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret")
    (tmp_path / ".env").write_text(f"# the broker login\nDSMR_MQTT_PASSWORD_FILE='{tmp_path / 'pw'}'\n")
    password = ServiceSettings().mqtt_password
    assert password is not None and password.get_secret_value() == "s3cret"


def test_mqtt_config_carries_the_login_but_never_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMR_MQTT_USERNAME", "backend")
    monkeypatch.setenv("DSMR_MQTT_PASSWORD", "hunter2")
    config = ServiceSettings().mqtt_config()
    assert (config.username, config.password, config.tls) == ("backend", "hunter2", None)
    assert "hunter2" not in repr(config)


def test_mqtt_config_tls_from_a_ca_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    monkeypatch.setenv("DSMR_MQTT_TLS_CA_FILE", str(ca))
    tls = ServiceSettings().mqtt_config().tls
    assert tls is not None and tls.ca_file == ca and not tls.insecure


def test_a_keyword_that_is_no_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="mqtt_hots"):
        ServiceSettings(mqtt_hots="broker")  # type: ignore[call-arg]
