"""Fixtures for the datalogger: the real console script as a subprocess on a private broker."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Mosquitto, ServiceProcess, console_script

DataloggerFactory = Callable[..., ServiceProcess]


@pytest.fixture
def datalogger(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[DataloggerFactory]:
    """Start ``dsmr-datalogger`` with DSMR_* settings given as keyword arguments."""
    started: list[ServiceProcess] = []

    def start(**settings: str) -> ServiceProcess:
        env = {
            **mosquitto.env(),
            "DSMR_DATALOGGER_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
            "DSMR_DATALOGGER_STATS_SECONDS": "0.2",
            "DSMR_DATALOGGER_RETRY_SECONDS": "0.1",
            "DSMR_MQTT_CLIENT_ID": f"datalogger-{len(started)}",
            **{f"DSMR_{name.upper()}": value for name, value in settings.items()},
        }
        process = ServiceProcess([console_script("dsmr-datalogger")], env, cwd=tmp_path)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.close()
