"""The example plugins shipped in dsmr_plugins/modules, each against a real peer."""

import csv
import os
import select
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import TELEGRAMS, Mosquitto, Probe, console_script, wait_for
from tests.plugins.support import (
    POST_SAVE,
    RAW_TELEGRAM,
    http_server,
    runner_process,
    running,
    send,
)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: the master fd (our end) and the slave's path (the plugin's port)."""
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def read_exactly(fd: int, size: int, timeout: float = 10.0) -> bytes:
    """Read ``size`` bytes from ``fd``, waiting at most ``timeout`` seconds for each chunk."""
    data = b""
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"only {len(data)} of {size} bytes arrived"
        data += os.read(fd, size - len(data))
    return data


def telegram(name: str) -> str:
    """A real telegram as the datalogger sends it: latin-1 text, CRLF kept."""
    return (TELEGRAMS / name).read_bytes().decode("latin-1")


def test_forward_telegrams_to_a_file_and_a_serial_port(
    mosquitto: Mosquitto,
    mqtt_client: Callable[..., Probe],
    tmp_path: Path,
    pty_pair: tuple[int, str],
) -> None:
    master, port = pty_pair
    out = tmp_path / "forwarded.txt"
    first, second = telegram("iskra_ie.txt"), telegram("fluvius_v171.txt")
    process = runner_process(
        mosquitto,
        tmp_path,
        ["dsmr_plugins.modules.forward_telegrams"],
        DSMR_PLUGIN_FORWARD_FILE=str(out),
        DSMR_PLUGIN_FORWARD_SERIAL_PORT=port,
        DSMR_PLUGIN_FORWARD_METER="meter1",
    )
    with running(process):
        probe = mqtt_client()
        send(probe, RAW_TELEGRAM, "meter1", data=first)
        send(probe, RAW_TELEGRAM, "other_meter", data="/not for us\r\n!")
        send(probe, RAW_TELEGRAM, "meter1", data=second)
        expected = (first + second).encode("latin-1")
        assert read_exactly(master, len(expected)) == expected
        wait_for(lambda: out.exists() and out.stat().st_size >= len(expected))
    assert out.read_bytes() == expected


def test_webhook_posts_each_day_statistics(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    day = {"day": "2026-11-24", "electricity1": "3.211", "electricity2": "4.002", "gas": "1.5"}
    with http_server() as server:
        process = runner_process(
            mosquitto,
            tmp_path,
            ["dsmr_plugins.modules.webhook_day_statistics"],
            DSMR_PLUGIN_WEBHOOK_URL=f"{server.url}/hook",
            DSMR_PLUGIN_WEBHOOK_TOKEN="s3cret-token",
        )
        with running(process):
            probe = mqtt_client()
            send(probe, POST_SAVE, "HourStatistics", instance={"hour_start": "x"}, created=True)
            send(probe, POST_SAVE, "DayStatistics", instance=day, created=True)
            (request,) = wait_for(server.seen, message="the webhook's POST")
            server.status = 500
            send(probe, POST_SAVE, "DayStatistics", instance=day, created=False)
            process.wait_for_output("webhook answered HTTP 500")
    assert request.path == "/hook"
    assert request.json == {"sender": "DayStatistics", "created": True, "instance": day}
    assert request.headers["Authorization"] == "Bearer s3cret-token"
    assert len(server.seen()) == 2  # the HourStatistics record was not posted
    assert "s3cret-token" not in process.output()


def test_csv_logger_writes_one_row_per_new_reading(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    out = tmp_path / "readings.csv"
    reading = {
        "timestamp": "2026-11-25T18:00:00+00:00",
        "electricity_delivered_1": 1234.567,
        "electricity_currently_delivered": 0.42,
        "extra_device_delivered": None,
    }
    process = runner_process(
        mosquitto,
        tmp_path,
        ["dsmr_plugins.modules.csv_readings"],
        DSMR_PLUGIN_CSV_FILE=str(out),
        DSMR_PLUGIN_CSV_FIELDS="meter,timestamp,electricity_delivered_1,"
        "electricity_currently_delivered,extra_device_delivered",
    )
    with running(process):
        probe = mqtt_client()
        send(probe, POST_SAVE, "DsmrReading", instance={**reading, "meter": "m1"}, created=True)
        send(probe, POST_SAVE, "DsmrReading", instance={**reading, "meter": "m1"}, created=False)
        later = {**reading, "meter": "m1", "timestamp": "2026-11-25T18:00:10+00:00"}
        send(probe, POST_SAVE, "DsmrReading", instance=later, created=True)
        wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 3)
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        [
            "meter",
            "timestamp",
            "electricity_delivered_1",
            "electricity_currently_delivered",
            "extra_device_delivered",
        ],
        ["m1", "2026-11-25T18:00:00+00:00", "1234.567", "0.42", ""],
        ["m1", "2026-11-25T18:00:10+00:00", "1234.567", "0.42", ""],
    ]


@pytest.mark.parametrize(
    ("plugin", "needs"),
    [
        ("forward_telegrams", "DSMR_PLUGIN_FORWARD_FILE"),
        ("webhook_day_statistics", "DSMR_PLUGIN_WEBHOOK_URL"),
        ("csv_readings", "DSMR_PLUGIN_CSV_FILE"),
    ],
)
def test_an_unconfigured_example_says_what_it_needs(plugin: str, needs: str) -> None:
    result = subprocess.run(
        [console_script("dsmr-plugins"), "--check"],
        env={"PATH": "/usr/bin:/bin", "DSMRREADER_PLUGINS": f"dsmr_plugins.modules.{plugin}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"plugin dsmr_plugins.modules.{plugin} could not be imported" in result.stderr
    assert needs in result.stderr
