"""The shipped broker (services/mosquitto/) run for real, and an MQTT 5 client reporting reason codes."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.helpers import REPO, free_port, port_open, service_missing, wait_for
from tests.stack.certs import SERVER_EXTENSIONS, make_ca, make_signed, tls_listener

MOSQUITTO_DIR = REPO / "services" / "mosquitto"
USERS = ("datalogger", "backend", "pvoutput", "plugins", "homeassistant")
NOT_AUTHORIZED = 0x87


def mosquitto_binary() -> str:
    """The broker binary, or skip/fail the test when it is missing."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        service_missing("mosquitto is not installed (apt-get install mosquitto)")
    if not shutil.which("mosquitto_passwd"):
        service_missing("mosquitto_passwd is missing (it comes with apt-get install mosquitto)")
    return binary


def set_option(config: str, option: str, value: str) -> str:
    """Replace the value of ``option`` in a mosquitto config; it must occur exactly once."""
    pattern = re.compile(rf"^{re.escape(option)}\s.*$", re.MULTILINE)
    assert len(pattern.findall(config)) == 1, f"{option} should occur once in the shipped config"
    return pattern.sub(f"{option} {value}", config)


@dataclass
class ShippedBroker:
    """mosquitto started through the shipped entrypoint.sh with the shipped config and ACL."""

    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    passwords: dict[str, str] = field(default_factory=lambda: {u: secrets.token_urlsafe(16) for u in USERS})
    process: subprocess.Popen[bytes] | None = None
    tls_certs: Path | None = None
    tls_port: int = field(default_factory=free_port)

    @property
    def log_path(self) -> Path:
        """Everything the entrypoint and mosquitto printed."""
        return self.workdir / "mosquitto.log"

    @property
    def password_file(self) -> Path:
        """Where the entrypoint writes the hashed passwords."""
        return self.workdir / "auth" / "passwd"

    def write_config(self) -> Path:
        """The shipped config with only paths and the listener changed."""
        config = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
        config = set_option(config, "listener", f"{self.port} {self.host}")
        config = set_option(config, "persistence_location", f"{self.workdir}/data/")
        config = set_option(config, "password_file", str(self.password_file))
        config = set_option(config, "acl_file", str(self.workdir / "auth" / "acl"))
        config = set_option(config, "include_dir", str(self.workdir / "conf.d"))
        path = self.workdir / "mosquitto.conf"
        path.write_text(config)
        if self.tls_certs is not None:  # the drop-in docker-compose.tls.yml mounts
            (self.workdir / "conf.d").mkdir(exist_ok=True)
            copied = self.workdir / "auth" / "certs"  # where entrypoint.sh copies them
            (self.workdir / "conf.d" / "tls.conf").write_text(tls_listener(self.tls_port, copied))
        return path

    def write_secrets(self, secret_users: tuple[str, ...]) -> Path:
        """Docker-secret files for ``secret_users``, with the trailing newline an editor adds."""
        folder = self.workdir / "secrets"
        folder.mkdir(exist_ok=True)
        for user in secret_users:
            (folder / f"{user}_mqtt_password").write_text(f"  {self.passwords[user]}\n")
        return folder

    def entrypoint_env(self, env_users: tuple[str, ...], secret_users: tuple[str, ...]) -> dict[str, str]:
        """Environment of entrypoint.sh: paths under the workdir, passwords from env and files."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
        env.update(
            MOSQUITTO_PASSWORD_FILE=str(self.password_file),
            MOSQUITTO_ACL_SOURCE=str(MOSQUITTO_DIR / "acl"),
            MOSQUITTO_SECRETS_DIR=str(self.write_secrets(secret_users)),
            MOSQUITTO_CONF_D=str(self.workdir / "conf.d"),
            MOSQUITTO_DATA_DIR=str(self.workdir / "data"),
            MOSQUITTO_CERTS_SOURCE=str(self.tls_certs or self.workdir / "no-certs"),
        )
        env.update({f"MQTT_{u.upper()}_PASSWORD": self.passwords[u] for u in env_users})
        return env

    def start(self, env_users: tuple[str, ...], secret_users: tuple[str, ...]) -> None:
        """Run the entrypoint, which writes the password file and execs mosquitto."""
        command = ["sh", str(MOSQUITTO_DIR / "entrypoint.sh"), mosquitto_binary(), "-c"]
        command.append(str(self.write_config()))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.entrypoint_env(env_users, secret_users),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        ports = [self.port] if self.tls_certs is None else [self.port, self.tls_port]
        wait_for(
            lambda: all(port_open(p) for p in ports) or self.process_exited(), 10, message="broker listening"
        )
        if self.process_exited():
            raise AssertionError(f"the shipped broker did not start:\n{self.log()}")

    def process_exited(self) -> bool:
        """True when the entrypoint or mosquitto is gone."""
        return self.process is not None and self.process.poll() is not None

    def log(self) -> str:
        """The log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def shipped_broker(
    env_users: tuple[str, ...] = ("datalogger", "backend"),
    secret_users: tuple[str, ...] = ("pvoutput", "plugins", "homeassistant"),
    make_certs: bool = False,
) -> Iterator[ShippedBroker]:
    """A running shipped broker; passwords of ``env_users`` come from MQTT_*_PASSWORD, the rest from files.

    With ``make_certs`` it also has the shipped TLS listener, with a CA made for the test in
    ``<workdir>/certs`` (ca.crt, server.crt/key for 127.0.0.1).
    """
    # Not under pytest's 0700 tmp dir: mosquitto started as root drops to its own user, which
    # must still reach the config, like it does in the container.
    workdir = Path(tempfile.mkdtemp(prefix="dsmr-shipped-broker-"))
    workdir.chmod(0o755)
    broker = ShippedBroker(workdir)
    if make_certs:
        broker.tls_certs = workdir / "certs"
        broker.tls_certs.mkdir()
        make_ca(broker.tls_certs, "ca")
        make_signed(broker.tls_certs, "server", "ca", SERVER_EXTENSIONS)
    try:
        broker.start(env_users, secret_users)
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class Client:
    """An MQTT 5 client that records CONNACK, SUBACK and PUBACK reason codes and what it receives."""

    def __init__(
        self, broker: ShippedBroker, user: str | None, password: str | None = None, *, tls: bool = False
    ) -> None:
        self.user = user
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        port = broker.port
        if tls:
            assert broker.tls_certs is not None
            self.client.tls_set(ca_certs=str(broker.tls_certs / "ca.crt"))
            port = broker.tls_port
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.received: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(broker.host, port)
        self.client.loop_start()
        wait_for(lambda: self.connack is not None, 10, message=f"CONNACK for {user}")

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with self._lock:
            self.pubacks[mid] = rc

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, rcs: list[ReasonCode], _p: Properties | None
    ) -> None:
        with self._lock:
            self.subacks[mid] = rcs

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((msg.topic, bytes(msg.payload)))

    @property
    def connected(self) -> bool:
        """True when the broker accepted the connection."""
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason code."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        wait_for(lambda: mid in self.pubacks, 10, message=f"PUBACK for {topic}")
        return self.pubacks[mid]

    def subscribe(self, topic_filter: str) -> ReasonCode:
        """Subscribe at QoS 1 and return the SUBACK reason code."""
        _rc, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        wait_for(lambda: mid in self.subacks, 10, message=f"SUBACK for {topic_filter}")
        return self.subacks[mid][0]

    def got(self, topic: str, payload: bytes | None = None) -> bool:
        """True when a message on ``topic`` (with ``payload``) arrived."""
        with self._lock:
            return any(t == topic and (payload is None or p == payload) for t, p in self.received)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
