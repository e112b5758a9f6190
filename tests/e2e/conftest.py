"""The ``stack`` fixture: a full stack of real processes per test, torn down afterwards."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import BROKER_CONFIG, KillableMosquitto, Meter, Stack, default_start
from tests.helpers import Probe
from tests.pvoutput.fake_pvoutput import FakePVOutput


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """mosquitto, a pty meter, a fake PVOutput and the four services (started by the test)."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = KillableMosquitto(workdir, extra_config=BROKER_CONFIG)
    broker.start()
    server = FakePVOutput().start()
    built = Stack(tmp_path, broker, Meter(default_start()), server)
    try:
        built.probe = Probe(broker)
        built.probe.subscribe("dsmr/#")
        yield built
    finally:
        built.close()
        broker.stop()
