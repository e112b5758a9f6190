"""docker-compose.yml validates with Debian's docker-compose and agrees with the broker's ACL and users."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from dsmr_backend.settings import BackendSettings
from dsmr_datalogger.settings import DataloggerSettings
from dsmr_plugins.settings import PluginSettings
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_shared.settings import ServiceSettings, env_name
from tests.helpers import REPO, Mosquitto, service_missing
from tests.stack.shipped import MOSQUITTO_DIR, USERS, shipped_broker

COMPOSE_FILE = REPO / "docker-compose.yml"
TLS_FILE = REPO / "docker-compose.tls.yml"
SERVICES = {"mosquitto", "datalogger", "backend", "pvoutput", "plugins"}
PYTHON_SERVICES = SERVICES - {"mosquitto"}


def compose(tmp_path: Path, *args: str, files: tuple[Path, ...] = (COMPOSE_FILE,)) -> str:
    """Run ``docker-compose -f ... <args>`` isolated from the developer's .env and variables."""
    binary = shutil.which("docker-compose")
    if binary is None:
        service_missing("docker-compose is not installed (apt-get install docker-compose)")
        raise AssertionError("unreachable")
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSMR_", "MQTT", "COMPOSE_"))}
    command = [binary, "--env-file", str(env_file)]
    for file in files:
        command += ["-f", str(file)]
    done = subprocess.run(
        [*command, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def service_blocks(config: str) -> dict[str, str]:
    """Split the resolved ``docker-compose config`` output into one text block per service."""
    section = config.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    parts = re.split(r"^  ([a-z][\w-]*):\n", section, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def acl_users() -> set[str]:
    """The users the shipped ACL names."""
    text = (MOSQUITTO_DIR / "acl").read_text()
    return set(re.findall(r"^user (\S+)$", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``docker-compose config`` (which validates the file), one text block per service."""
    return service_blocks(compose(tmp_path_factory.mktemp("compose"), "config"))


def test_compose_file_validates_with_the_postgres_profile_and_tls(
    tmp_path: Path, resolved: dict[str, str]
) -> None:
    assert set(resolved) >= SERVICES
    compose(tmp_path, "--profile", "postgres", "config", "-q", files=(COMPOSE_FILE, TLS_FILE))


def test_postgres_only_runs_with_its_profile(resolved: dict[str, str]) -> None:
    # docker-compose 1.x lists every service in config; "up" starts only those of active profiles.
    assert set(resolved) == SERVICES | {"postgres"}
    assert re.search(r"^    profiles:\n    - postgres$", resolved["postgres"], flags=re.MULTILINE)
    assert all("profiles:" not in resolved[name] for name in SERVICES)


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restartt: always", 1))
    with pytest.raises(AssertionError, match="restartt"):
        compose(tmp_path, "config", "-q", files=(broken,))


def test_each_service_logs_in_as_its_own_acl_user(resolved: dict[str, str]) -> None:
    blocks = resolved
    users = set()
    for name in PYTHON_SERVICES:
        block = blocks[name]
        assert f"DSMR_MQTT_USERNAME: {name}\n" in block
        assert f"DSMR_MQTT_PASSWORD_FILE: /run/secrets/{name}_mqtt_password\n" in block
        assert f"- source: {name}_mqtt_password\n" in block
        assert "restart: unless-stopped" in block
        assert "condition: service_healthy" in block
        assert re.search(r"^    hostname: \S+$", block, flags=re.MULTILINE), "stable client ids"
        assert "DSMR_MQTT_PASSWORD:" not in block, "passwords come from secrets, never the environment"
        users.add(name)
    assert acl_users() == users | {"homeassistant"} == set(USERS)
    for user in USERS:  # the broker gets every user's secret
        assert f"- source: {user}_mqtt_password\n" in blocks["mosquitto"]


SETTINGS: dict[str, type[BaseModel]] = {
    "datalogger": DataloggerSettings,
    "backend": BackendSettings,
    "pvoutput": PVOutputSettings,
    "plugins": PluginSettings,
}


def known_variables(settings_cls: type[BaseModel]) -> set[str]:
    """Every variable a settings class reads, with the *_FILE form of each."""
    names = {env_name(settings_cls, field) for field in settings_cls.model_fields}
    return names | {f"{name}_FILE" for name in names}


def compose_environment(block: str) -> dict[str, str]:
    """The resolved environment of one service block."""
    environment = block.split("    environment:\n", 1)[1]
    pairs = re.findall(r"^      ([A-Z][A-Z0-9_]*): ?(.*)$", environment, flags=re.MULTILINE)
    return {name: value.strip("'\"") for name, value in pairs}


def as_on_this_machine(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Point the container paths that must exist (secrets, the plugins folder) into ``tmp_path``."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("datalogger", "backend", "pvoutput", "plugins"):
        (secrets / f"{name}_mqtt_password").write_text(f"{name}-password\n")
    for empty in ("pvoutput_api_key", "backend_database_url"):  # as make-secrets.sh leaves them
        (secrets / empty).write_text("")
    local = {k: v.replace("/run/secrets/", f"{secrets}/") for k, v in env.items()}
    if "DSMR_PLUGINS_DIR" in local:
        local["DSMR_PLUGINS_DIR"] = str(tmp_path)
    return local


@pytest.mark.parametrize("service", sorted(PYTHON_SERVICES))
def test_compose_environment_is_valid_for_the_service(
    resolved: dict[str, str], service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose_environment(resolved[service])
    unknown = set(env) - known_variables(SETTINGS[service])
    assert not unknown, f"{service} does not read {sorted(unknown)} (renamed setting?)"
    for name, value in as_on_this_machine(env, tmp_path).items():
        monkeypatch.setenv(name, value)
    settings = SETTINGS[service]()  # raises on any bad value
    assert isinstance(settings, ServiceSettings)
    assert (settings.mqtt_host, settings.mqtt_username) == ("mosquitto", service)
    assert settings.mqtt_password is not None
    assert settings.mqtt_password.get_secret_value() == f"{service}-password"
    if isinstance(settings, BackendSettings):  # the empty URL secret means SQLite in the volume
        assert settings.database_url == "sqlite:////data/dsmr.sqlite3"
    if isinstance(settings, PVOutputSettings):  # off until the user adds key and system id
        assert not settings.uploads_enabled
    if isinstance(settings, DataloggerSettings):
        assert settings.datalogger_port == "/dev/ttyUSB0"
        assert str(settings.datalogger_spool_path).startswith("/data/")


def mosquitto_healthcheck() -> str:
    """The mosquitto healthcheck command of the compose file, as the container's shell sees it."""
    line = next(line for line in COMPOSE_FILE.read_text().splitlines() if "mosquitto_sub" in line)
    kind, command = json.loads(line.split("test:", 1)[1])
    assert kind == "CMD-SHELL"
    return str(command).replace("$$", "$")


def run_healthcheck(port: int) -> int:
    """Run the healthcheck against a broker on ``port`` (it names 1883, the container's port)."""
    command = mosquitto_healthcheck().replace("-p 1883", f"-p {port}")
    return subprocess.run(["sh", "-c", command], timeout=30, check=False).returncode


def test_mosquitto_healthcheck_wants_anonymous_clients_refused(tmp_path: Path) -> None:
    if shutil.which("mosquitto_sub") is None:
        service_missing("mosquitto_sub is missing (apt-get install mosquitto-clients)")
    with shipped_broker() as broker:
        assert run_healthcheck(broker.port) == 0
    open_broker = Mosquitto(tmp_path, anonymous=True)
    open_broker.start()
    try:
        assert run_healthcheck(open_broker.port) != 0, "a broker open to anyone is not healthy"
    finally:
        open_broker.stop()
    assert run_healthcheck(open_broker.port) != 0, "a broker that is down is not healthy"
