"""The shared Bus over TLS: a CA file, optional client certificates, against mosquitto's TLS listener.

The certificates are made here with the openssl CLI; the listener is the shipped
services/mosquitto/tls.conf with only the port and certificate paths changed (and, for mutual
TLS, require_certificate switched on).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsmr_shared.bus import Bus
from dsmr_shared.settings import ServiceSettings
from tests.helpers import Mosquitto, Probe, free_port, port_open, wait_for
from tests.stack.certs import (
    CLIENT_EXTENSIONS,
    OTHER_NAME_EXTENSIONS,
    SERVER_EXTENSIONS,
    make_ca,
    make_signed,
    tls_listener,
)


@dataclass(frozen=True)
class TlsBroker:
    """A mosquitto with a plain listener (for probes) and two TLS listeners from the shipped tls.conf."""

    broker: Mosquitto
    certs: Path
    tls_port: int
    mutual_port: int
    other_name_port: int

    def cert(self, name: str) -> Path:
        """Path of a file made by the fixture (ca.crt, other-ca.crt, client.crt, client.key)."""
        return self.certs / name

    def log(self) -> str:
        """The broker's log so far."""
        return self.broker.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """CA, server and client certificates, a second CA, and a broker with TLS listeners."""
    certs = tmp_path_factory.mktemp("certs")
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_signed(certs, "server", "ca", SERVER_EXTENSIONS)
    make_signed(certs, "client", "ca", CLIENT_EXTENSIONS)
    make_signed(certs, "other-name", "ca", OTHER_NAME_EXTENSIONS)
    ports = free_port(), free_port(), free_port()
    extra = (
        tls_listener(ports[0], certs)
        + tls_listener(ports[1], certs, mutual=True)
        + tls_listener(ports[2], certs, server="other-name")
    )
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), extra_config=extra)
    broker.start()
    try:
        wait_for(lambda: all(port_open(p) for p in ports), 10, message="TLS listeners")
        yield TlsBroker(broker, certs, *ports)
    finally:
        broker.stop()


@pytest.fixture
def start_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Bus]]:
    """Start a Bus configured through DSMR_MQTT_* variables, as a service is; closed afterwards."""
    buses: list[Bus] = []

    def start(port: int, host: str = "127.0.0.1", insecure: bool = False, **files: Path) -> Bus:
        monkeypatch.setenv("DSMR_MQTT_HOST", host)
        monkeypatch.setenv("DSMR_MQTT_PORT", str(port))
        monkeypatch.setenv("DSMR_MQTT_TLS_INSECURE", str(insecure).lower())
        for name, path in files.items():
            monkeypatch.setenv(f"DSMR_MQTT_TLS_{name.upper()}_FILE", str(path))
        bus = Bus(ServiceSettings().mqtt_config(), f"tls-{uuid.uuid4().hex[:8]}")
        buses.append(bus)
        bus.start()
        return bus

    yield start
    for bus in buses:
        bus.close(timeout=2)


def watch_state(tls_broker: TlsBroker, bus: Bus) -> Probe:
    """A probe on the plain listener that records the bus's state topic."""
    probe = Probe(tls_broker.broker)
    probe.subscribe(bus.state_topic)
    return probe


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_bus_connects_with_the_ca_file(
    tls_broker: TlsBroker, start_bus: Callable[..., Bus], host: str
) -> None:
    bus = start_bus(tls_broker.tls_port, host, ca=tls_broker.cert("ca.crt"))
    assert bus.config.tls is not None
    assert bus.wait_connected(10), "the bus should connect over TLS"
    probe = watch_state(tls_broker, bus)
    try:
        probe.wait_for(bus.state_topic, where=lambda m: m.payload == b"online")
        assert bus.publish_and_wait("dsmr/tls/check", b"over tls", timeout=10)
    finally:
        probe.close()


def test_a_broker_signed_by_another_ca_is_refused(
    tls_broker: TlsBroker, start_bus: Callable[..., Bus]
) -> None:
    bus = start_bus(tls_broker.tls_port, ca=tls_broker.cert("other-ca.crt"))
    # It keeps retrying (and counting) without ever reporting a connection.
    wait_for(lambda: bus.counters.get("connect_failures") >= 2, 10, message="two failed attempts")
    assert not bus.connected
    assert not bus.wait_connected(0.2)


def test_the_broker_host_name_is_verified(tls_broker: TlsBroker, start_bus: Callable[..., Bus]) -> None:
    # Signed by the trusted CA, but for broker.invalid, not 127.0.0.1.
    bus = start_bus(tls_broker.other_name_port, ca=tls_broker.cert("ca.crt"))
    wait_for(lambda: bus.counters.get("connect_failures") >= 2, 10, message="two failed attempts")
    assert not bus.connected
    insecure = start_bus(tls_broker.other_name_port, insecure=True, ca=tls_broker.cert("ca.crt"))
    assert insecure.wait_connected(10), "DSMR_MQTT_TLS_INSECURE skips only the host name check"


def test_mutual_tls_accepts_a_client_certificate(
    tls_broker: TlsBroker, start_bus: Callable[..., Bus]
) -> None:
    bus = start_bus(
        tls_broker.mutual_port,
        ca=tls_broker.cert("ca.crt"),
        cert=tls_broker.cert("client.crt"),
        key=tls_broker.cert("client.key"),
    )
    assert bus.wait_connected(10), "a client certificate signed by the CA should be accepted"
    assert bus.publish_and_wait("dsmr/tls/mutual", b"ok", timeout=10)


def test_mutual_tls_refuses_a_client_without_certificate(
    tls_broker: TlsBroker, start_bus: Callable[..., Bus]
) -> None:
    refusals_before = tls_broker.log().count("peer did not return a certificate")
    bus = start_bus(tls_broker.mutual_port, ca=tls_broker.cert("ca.crt"))
    probe = watch_state(tls_broker, bus)
    try:
        # The broker logs each refused handshake; wait for two, i.e. the bus retried.
        wait_for(
            lambda: tls_broker.log().count("peer did not return a certificate") >= refusals_before + 2,
            15,
            message="two refused handshakes in the broker log",
        )
        assert not bus.connected
        assert not probe.received(bus.state_topic), "it must never have been online"
    finally:
        probe.close()
