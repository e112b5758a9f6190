"""Fixtures for the PVOutput tests: a fake PVOutput, settings and a running service."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dsmr_pvoutput.service import PVOutputService
from dsmr_pvoutput.settings import PVOutputSettings
from tests.helpers import Mosquitto, Probe, wait_for
from tests.pvoutput.fake_pvoutput import FakePVOutput
from tests.pvoutput.replay import Sample

READINGS = "dsmr/json"
SIGNALS = "dsmr/dsmr_pvoutput/signals/pvoutput_upload/+"


@pytest.fixture
def fake() -> Iterator[FakePVOutput]:
    """A fake PVOutput on a free port."""
    server = FakePVOutput().start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(
    mosquitto: Mosquitto, fake: FakePVOutput, tmp_path: Path
) -> Callable[..., PVOutputSettings]:
    """Settings pointing at the test broker and fake PVOutput, with fast retries."""
    client_id = f"pvoutput-test-{uuid.uuid4().hex[:8]}"

    def make(**overrides: Any) -> PVOutputSettings:
        values: dict[str, Any] = {
            "mqtt_host": mosquitto.host,
            "mqtt_port": mosquitto.port,
            "mqtt_client_id": client_id,
            "pvoutput_api_key": fake.api_key,
            "pvoutput_system_id": fake.system_id,
            "pvoutput_api_url": fake.url,
            "pvoutput_outbox": tmp_path / "outbox.sqlite3",
            "pvoutput_retry_initial": 0.05,
            "pvoutput_retry_max": 0.3,
            "pvoutput_backlog_gap": 0,
            "log_level": "DEBUG",
        }
        values.update(overrides)
        return PVOutputSettings(**values)

    return make


@pytest.fixture
def services() -> Iterator[list[PVOutputService]]:
    """Services a test started; stopped afterwards."""
    started: list[PVOutputService] = []
    yield started
    for service in started:
        service.stop()


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="paho")


def start(
    settings: PVOutputSettings, services: list[PVOutputService], probe: Probe, first: Sample | None
) -> PVOutputService:
    """Start a service; with ``first``, publish it until the service has surely subscribed."""
    service = PVOutputService(settings)
    services.append(service)
    service.start()
    assert service.bus.wait_connected(10)
    if first is not None:

        def heard() -> bool:
            probe.publish(READINGS, first.payload())
            return service.counters.get("readings") > 0

        wait_for(heard, timeout=10, interval=0.1, message="service subscribed")
    return service


def publish(probe: Probe, samples: list[Sample]) -> None:
    """Publish readings in order at QoS 1."""
    for sample in samples:
        probe.publish(READINGS, sample.payload())


def signal_forms(probe: Probe) -> list[dict[str, Any]]:
    """The data kwarg of every pvoutput_upload signal received, in order."""
    return [json.loads(m.payload)["kwargs"]["data"] for m in probe.received(SIGNALS)]


def no_pending(service: PVOutputService) -> bool:
    """True when the outbox holds no pending status."""
    assert service.outbox is not None
    return service.outbox.counts().get("pending", 0) == 0
