"""The real console script: --help, bad settings, idle without a key, a bad key in a real process."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Mosquitto, Probe, ServiceProcess, console_script, wait_for
from tests.pvoutput.fake_pvoutput import FakePVOutput
from tests.pvoutput.replay import day_samples, full_day

SCRIPT = console_script("dsmr-pvoutput")


def test_help_lists_every_setting() -> None:
    done = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0
    for name in (
        "DSMR_PVOUTPUT_API_KEY",
        "DSMR_PVOUTPUT_SYSTEM_ID",
        "DSMR_PVOUTPUT_INTERVAL",
        "DSMR_PVOUTPUT_UPLOAD_DELAY",
        "DSMR_PVOUTPUT_PROCESSING_DELAY",
        "DSMR_PVOUTPUT_API_URL",
        "DSMR_PVOUTPUT_OUTBOX",
        "DSMR_PVOUTPUT_METER",
        "DSMR_MQTT_HOST",
    ):
        assert name in done.stdout


def test_a_bad_interval_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"DSMR_PVOUTPUT_INTERVAL": "7", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dsmr-pvoutput: bad setting: DSMR_PVOUTPUT_INTERVAL: must be 5, 10 or 15 (minutes)"
    ]


@pytest.mark.services
def test_without_key_it_says_so_once_and_idles(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    probe = mqtt_client()
    probe.subscribe("dsmr/service/pvoutput/state")
    env = {**mosquitto.env(), "DSMR_PVOUTPUT_SYSTEM_ID": "12345", "DSMR_LOG_LEVEL": "DEBUG"}
    service = ServiceProcess([SCRIPT], env, cwd=tmp_path).start()
    try:
        service.wait_for_output("PVOutput uploads are off")
        probe.wait_for("dsmr/service/pvoutput/state", where=lambda m: m.text == "online")
        assert service.stop(signal.SIGTERM) == 0
        assert service.output().count("uploads are off") == 1
        assert not (tmp_path / "pvoutput-outbox.sqlite3").exists()
    finally:
        service.close()


@pytest.mark.services
def test_bad_key_in_a_real_process_one_error_and_no_secret(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    fake = FakePVOutput().start()
    wrong = "wr0ng-" + uuid.uuid4().hex
    env = {
        **mosquitto.env(),
        "DSMR_MQTT_CLIENT_ID": f"pvo-cli-{uuid.uuid4().hex[:6]}",
        "DSMR_PVOUTPUT_API_KEY": wrong,
        "DSMR_PVOUTPUT_SYSTEM_ID": fake.system_id,
        "DSMR_PVOUTPUT_API_URL": fake.url,
        "DSMR_PVOUTPUT_OUTBOX": str(tmp_path / "outbox.sqlite3"),
        "DSMR_LOG_LEVEL": "DEBUG",
    }
    samples = day_samples(full_day())[:61]
    probe = mqtt_client()
    service = ServiceProcess([SCRIPT], env, cwd=tmp_path).start()
    try:
        service.wait_for_output("uploading dsmr/json to PVOutput system")

        def asked() -> bool:
            probe.publish("dsmr/json", samples[0].payload())
            return bool(fake.requests)

        wait_for(asked, timeout=15, interval=0.2, message="first upload attempt")
        for sample in samples[1:]:
            probe.publish("dsmr/json", sample.payload())
        service.wait_for_output("Uploads are paused until the settings change")
        assert service.stop(signal.SIGTERM) == 0
        output = service.output()
        assert [r.status for r in fake.requests] == [401]
        assert output.count("refused the API key or system id") == 1
        assert "Unauthorized 401: Invalid API Key" in output
        assert wrong not in output
    finally:
        service.close()
        fake.stop()
