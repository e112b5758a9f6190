"""Test helpers with real parts: a private mosquitto, an MQTT probe, service subprocesses, waits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

T = TypeVar("T")

REQUIRE_SERVICES = os.environ.get("DSMR_TEST_REQUIRE_SERVICES") == "1"
REPO = Path(__file__).resolve().parent.parent
TELEGRAMS = Path(os.environ.get("DSMR_TELEGRAMS_DIR") or REPO.parent / "shared" / "telegrams" / "real")
"""Real meter telegrams from the kit that sits beside the repository (CI lays it there)."""


def service_missing(reason: str) -> None:
    """Skip a test that needs a missing service, or fail when CI requires every service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing (DSMR_TEST_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(reason)


def wait_for(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, message: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto:
    """A private mosquitto on a free port, with a config this class writes."""

    def __init__(
        self, workdir: Path, extra_config: str = "", port: int | None = None, anonymous: bool = True
    ) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            service_missing("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.extra_config = extra_config
        self.anonymous = anonymous
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        """Write the broker's config: one loopback listener, persistence, big queues."""
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 100\n"
            f"log_dest file {self.log_path}\n"
            # Started as root, mosquitto drops to user "mosquitto", who cannot write our tmp dir.
            + ("user root\n" if os.geteuid() == 0 else "")
            + "log_type error\nlog_type warning\nlog_type notice\n"
            + self.extra_config
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start (or restart, same port and persistence) and wait until it accepts connections."""
        self.write_config()
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port) or self._exited(), timeout, message="mosquitto up")
        if self._exited():
            raise RuntimeError(f"mosquitto exited: {self.log_path.read_text(errors='replace')}")

    def _exited(self) -> bool:
        return self._process is not None and self._process.poll() is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, so persistence is saved)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
        self._process = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is read or acknowledged."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker go on (SIGCONT)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def env(self) -> dict[str, str]:
        """The DSMR_MQTT_* variables a service needs to reach this broker."""
        return {
            "DSMR_MQTT_HOST": self.host,
            "DSMR_MQTT_PORT": str(self.port),
            # Tests restart brokers; reconnecting within 2 s keeps them quick.
            "DSMR_MQTT_RECONNECT_MAX": "2",
        }


@dataclass(frozen=True, slots=True)
class Received:
    """A message a Probe received."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        """The payload as UTF-8 text."""
        return self.payload.decode("utf-8", errors="replace")


class Probe:
    """A test-side MQTT client that records what it receives."""

    def __init__(
        self,
        broker: Mosquitto,
        client_id: str | None = None,
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.broker = broker
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.persistent = persistent
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda *_a: self._connected.set()
        self.client.on_disconnect = lambda *_a: self._connected.clear()
        self._filters: list[tuple[str, int]] = []
        self.connect()

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (again) and wait for the CONNACK."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if self.persistent else 0
        self.client.connect(
            self.broker.host, self.broker.port, clean_start=not self.persistent, properties=props
        )
        self.client.loop_start()
        wait_for(self._connected.is_set, timeout, message="probe connected")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos))

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = 10.0) -> None:
        """Subscribe and wait for the SUBACK."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic_filter, qos)
        wait_for(done.is_set, timeout, message=f"SUBACK for {topic_filter}")

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False, timeout: float = 10.0
    ) -> None:
        """Publish and wait until the broker acknowledged (QoS 1)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)

    def received(self, topic_filter: str = "#") -> list[Received]:
        """The messages so far whose topic matches ``topic_filter``."""
        with self._lock:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def wait_for(
        self,
        topic_filter: str,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[Received], bool] | None = None,
    ) -> list[Received]:
        """Wait until ``count`` messages matching the filter (and ``where``) arrived; return them."""

        def matching() -> list[Received]:
            found = [m for m in self.received(topic_filter) if where is None or where(m)]
            return found if len(found) >= count else []

        return wait_for(matching, timeout, message=f"{count} message(s) on {topic_filter}")

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


class ServiceProcess:
    """A service started as a real subprocess, its output captured to a file."""

    def __init__(self, args: Iterable[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.args = list(args)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.cwd = cwd
        self._log = tempfile.NamedTemporaryFile(prefix="service-", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start the process (again); output is appended to the same log."""
        self.process = subprocess.Popen(
            self.args, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def output(self) -> str:
        """Everything the process printed so far."""
        return Path(self._log.name).read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 15.0) -> str:
        """Wait until ``text`` shows up in the output."""
        wait_for(lambda: text in self.output() or self._died(), timeout, message=f"output {text!r}")
        if text not in self.output():
            raise AssertionError(f"process exited before printing {text!r}:\n{self.output()}")
        return self.output()

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
            raise AssertionError(f"{self.args[0]} ignored signal {sig}:\n{self.output()}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def close(self) -> None:
        """Make sure the process is gone and drop its log."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        Path(self._log.name).unlink(missing_ok=True)


def console_script(name: str) -> str:
    """Path of one of our console scripts in the running virtualenv."""
    import sys  # noqa: PLC0415

    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name
