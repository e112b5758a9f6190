"""Fixtures with real parts: a private mosquitto per test, MQTT probes, a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dsmr_shared import signals
from tests.helpers import TELEGRAMS, Mosquitto, Probe, service_missing

POSTGRES_ADMIN_URL = os.environ.get(
    "DSMR_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    """Stop at once, with the fix, when the kit's real telegrams are not where tests expect them."""
    if not any(TELEGRAMS.glob("*.txt")):
        pytest.exit(
            f"no real telegrams in {TELEGRAMS}: put the kit's shared/ folder beside the repository "
            "or set DSMR_TELEGRAMS_DIR",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No DSMR_* variable or .env file of the developer's leaks into a test; no bus outlives it."""
    for name in list(os.environ):
        if name.startswith("DSMR_") and not name.startswith("DSMR_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DSMRREADER_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    signals.use_bus(None)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private mosquitto on a free port for this test."""
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = Mosquitto(workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mqtt_client(mosquitto: Mosquitto) -> Iterator[Callable[..., Probe]]:
    """A factory for probes on the test's broker; all are closed afterwards."""
    probes: list[Probe] = []

    def make(**kwargs: object) -> Probe:
        probe = Probe(mosquitto, **kwargs)  # type: ignore[arg-type]
        probes.append(probe)
        return probe

    yield make
    for probe in probes:
        probe.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    try:
        import psycopg  # noqa: PLC0415

        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:
        service_missing(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
        raise
    name = f"dsmr_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
