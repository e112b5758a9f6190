"""The shared Bus over TLS: a CA file, optional client certificates, against mosquitto's TLS listener.

The certificates are made here with the openssl CLI; the listener is the shipped
services/mosquitto/tls.conf with only the port and certificate paths changed (and, for mutual
TLS, require_certificate switched on).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsmr_shared.bus import Bus
from dsmr_shared.settings import ServiceSettings
from tests.helpers import REPO, Mosquitto, Probe, free_port, port_open, service_missing, wait_for

TLS_CONF = REPO / "services" / "mosquitto" / "tls.conf"
SERVER_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
CLIENT_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl CLI; fail with its message."""
    binary = shutil.which("openssl")
    if binary is None:
        service_missing("openssl is not installed")
        return
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def make_ca(folder: Path, name: str) -> None:
    """A self-signed CA: <name>.crt and <name>.key."""
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=dsmr test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_signed(folder: Path, name: str, ca: str, extensions: str) -> None:
    """A key and a certificate for ``name`` signed by ``ca``."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


@dataclass(frozen=True)
class TlsBroker:
    """A mosquitto with a plain listener (for probes) and two TLS listeners from the shipped tls.conf."""

    broker: Mosquitto
    certs: Path
    tls_port: int
    mutual_port: int

    def cert(self, name: str) -> Path:
        """Path of a file made by the fixture (ca.crt, other-ca.crt, client.crt, client.key)."""
        return self.certs / name

    def log(self) -> str:
        """The broker's log so far."""
        return self.broker.log_path.read_text(errors="replace")


def tls_listener(port: int, certs: Path, *, mutual: bool) -> str:
    """The shipped TLS listener with this test's port and certificate files."""
    text = TLS_CONF.read_text()
    replacements = {
        r"^listener 8883$": f"listener {port} 127.0.0.1",
        r"^certfile .*$": f"certfile {certs / 'server.crt'}",
        r"^keyfile .*$": f"keyfile {certs / 'server.key'}",
        r"^cafile .*$": f"cafile {certs / 'ca.crt'}",
        r"^require_certificate false$": f"require_certificate {'true' if mutual else 'false'}",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert count == 1, f"{pattern} should occur once in {TLS_CONF}"
    return text


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """CA, server and client certificates, a second CA, and a broker with TLS listeners."""
    certs = tmp_path_factory.mktemp("certs")
    make_ca(certs, "ca")
    make_ca(certs, "other-ca")
    make_signed(certs, "server", "ca", SERVER_EXTENSIONS)
    make_signed(certs, "client", "ca", CLIENT_EXTENSIONS)
    tls_port, mutual_port = free_port(), free_port()
    extra = tls_listener(tls_port, certs, mutual=False) + tls_listener(mutual_port, certs, mutual=True)
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), extra_config=extra)
    broker.start()
    try:
        wait_for(lambda: port_open(tls_port) and port_open(mutual_port), 10, message="TLS listeners")
        yield TlsBroker(broker, certs, tls_port, mutual_port)
    finally:
        broker.stop()


@pytest.fixture
def start_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Bus]]:
    """Start a Bus configured through DSMR_MQTT_* variables, as a service is; closed afterwards."""
    buses: list[Bus] = []

    def start(port: int, host: str = "127.0.0.1", **files: Path) -> Bus:
        monkeypatch.setenv("DSMR_MQTT_HOST", host)
        monkeypatch.setenv("DSMR_MQTT_PORT", str(port))
        for name, path in files.items():
            monkeypatch.setenv(f"DSMR_MQTT_TLS_{name.upper()}_FILE", str(path))
        bus = Bus(ServiceSettings(), f"tls-{uuid.uuid4().hex[:8]}")
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
    assert bus.settings.tls_enabled
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
