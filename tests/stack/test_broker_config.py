"""The shipped broker config, ACL and password tooling (services/mosquitto/) against the real mosquitto.

The broker is started through the shipped entrypoint.sh with the shipped mosquitto.conf (only
paths and the listener port rewritten) and the shipped ACL, unchanged. mosquitto's acl_file
accepts every subscription and filters at delivery, so read rights are proven by what arrives:
after each probe message, a control message published later is awaited first (mosquitto routes
a QoS 1 message before it sends the PUBACK, so the probe would have been queued ahead of it).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dsmr_shared.bus import Bus, Message
from dsmr_shared.settings import ServiceSettings
from tests.helpers import REPO, wait_for
from tests.stack.shipped import (
    MOSQUITTO_DIR,
    NOT_AUTHORIZED,
    USERS,
    Client,
    ShippedBroker,
    shipped_broker,
)

RAW = "dsmr/dsmr_datalogger/signals/raw_telegram/meter1"
BACKEND_CALLED = "dsmr/dsmr_backend/signals/backend_called/backend"
POST_SAVE = "dsmr/dsmr_backend/signals/post_save/DayStatistics"
PV_UPLOAD = "dsmr/dsmr_pvoutput/signals/pvoutput_upload/12345"
DISCOVERY = "homeassistant/sensor/dsmr_meter1/electricity_delivered_1/config"
BACKEND_OUTPUTS = (
    "dsmr/reading/electricity_currently_delivered",
    "dsmr/json",
    "dsmr/meter-stats/dsmr_version",
    "dsmr/consumption/gas/delivered",
    "dsmr/day-consumption/electricity1",
    "dsmr/current-month/electricity1",
    "dsmr/current-year/electricity1",
    "dsmr/consumption/quarter-hour-peak-electricity/average_delivered",
    "dsmr/meter/meter1/reading/electricity_currently_delivered",
    "dsmr/meter/meter1/json",
    "dsmr/meter/meter1/meter-stats/dsmr_version",
)

# user -> (topics it must be able to publish, topics it must not)
WRITES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "datalogger": (
        (RAW, "dsmr/service/datalogger/state", "dsmr/service/datalogger/stats"),
        ("dsmr/reading/electricity_currently_delivered", "dsmr/json", POST_SAVE, BACKEND_CALLED,
         "dsmr/service/backend/state", "homeassistant/status", "dsmr/plugins/x/y/z"),
    ),
    "backend": (
        (*BACKEND_OUTPUTS, BACKEND_CALLED, POST_SAVE, DISCOVERY,
         "homeassistant/binary_sensor/node/object/config", "dsmr/service/backend/state"),
        (RAW, PV_UPLOAD, "homeassistant/status", "dsmr/service/datalogger/state", "dsmr/plugins/x/y/z"),
    ),
    "pvoutput": (
        (PV_UPLOAD, "dsmr/service/pvoutput/state"),
        (RAW, "dsmr/json", "dsmr/meter/meter1/json", POST_SAVE, "dsmr/service/backend/state"),
    ),
    "plugins": (
        ("dsmr/plugins/my_plugin/done/sender", "dsmr/dsmr_plugins/modules/my_plugin/signals/done/sender",
         "dsmr/service/plugins/state", "dsmr/service/plugins/pause"),
        (RAW, BACKEND_CALLED, POST_SAVE, PV_UPLOAD, *BACKEND_OUTPUTS, DISCOVERY, "homeassistant/status",
         "dsmr/service/backend/state", "dsmr/my_plugin/signals/x/sender"),
    ),
    "homeassistant": (
        ("homeassistant/status",),
        (RAW, "dsmr/reading/electricity_currently_delivered", DISCOVERY, POST_SAVE),
    ),
}  # fmt: skip

# (reader, topic, writer, may the reader receive it?)
READS: list[tuple[str, str, str, bool]] = [
    ("backend", RAW, "datalogger", True),
    ("backend", "homeassistant/status", "homeassistant", True),
    ("backend", PV_UPLOAD, "pvoutput", False),
    ("backend", "dsmr/plugins/my_plugin/done/sender", "plugins", False),
    ("pvoutput", "dsmr/json", "backend", True),
    ("pvoutput", "dsmr/meter/meter1/json", "backend", True),
    ("pvoutput", RAW, "datalogger", False),
    ("pvoutput", "dsmr/reading/electricity_currently_delivered", "backend", False),
    ("pvoutput", POST_SAVE, "backend", False),
    ("pvoutput", "dsmr/meter/meter1/reading/electricity_currently_delivered", "backend", False),
    ("plugins", RAW, "datalogger", True),
    ("plugins", BACKEND_CALLED, "backend", True),
    ("plugins", POST_SAVE, "backend", True),
    ("plugins", PV_UPLOAD, "pvoutput", True),
    ("plugins", "dsmr/reading/electricity_currently_delivered", "backend", True),
    ("plugins", "dsmr/service/datalogger/state", "datalogger", True),
    ("plugins", "homeassistant/status", "homeassistant", False),
    ("plugins", DISCOVERY, "backend", False),
    ("datalogger", RAW, "datalogger", False),
    ("datalogger", "dsmr/json", "backend", False),
    ("datalogger", "homeassistant/status", "homeassistant", False),
    ("homeassistant", "dsmr/reading/electricity_currently_delivered", "backend", True),
    ("homeassistant", DISCOVERY, "backend", True),
    ("homeassistant", RAW, "datalogger", True),
    ("homeassistant", "dsmr/plugins/my_plugin/done/sender", "plugins", True),
]


@pytest.fixture(scope="module")
def broker() -> Iterator[ShippedBroker]:
    """One shipped broker for the module; passwords from MQTT_*_PASSWORD and secret files."""
    with shipped_broker() as running:
        yield running


@pytest.fixture(scope="module")
def clients(broker: ShippedBroker) -> Iterator[dict[str, Client]]:
    """One connected client per user, each subscribed to everything it may or may not read."""
    made = {user: Client(broker, user, broker.passwords[user]) for user in USERS}
    for client in made.values():
        assert client.connected, f"{client.user} refused: {client.connack}"
        assert not client.subscribe("#").is_failure
    yield made
    for client in made.values():
        client.close()


def token() -> bytes:
    """A payload no other test sends."""
    return uuid.uuid4().hex.encode()


def await_control(client: Client, observer: Client) -> None:
    """Publish a control message from ``client`` on its own topic and wait until ``observer`` has it."""
    topic, payload = f"dsmr/service/{client.user}/control", token()
    assert not client.publish(topic, payload).is_failure
    wait_for(lambda: observer.got(topic, payload), 10, message="the control message")


def test_anonymous_clients_are_refused(broker: ShippedBroker) -> None:
    anonymous = Client(broker, None)
    assert anonymous.connack is not None and anonymous.connack.value == NOT_AUTHORIZED
    v311 = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon311", protocol=mqtt.MQTTv311)
    codes: list[int] = []
    v311.on_connect = lambda _c, _u, _f, rc, _p: codes.append(rc.value)
    v311.connect(broker.host, broker.port)
    v311.loop_start()
    try:
        wait_for(lambda: codes, 10, message="CONNACK")
        assert codes == [NOT_AUTHORIZED]  # paho reports 3.1.1's return code 5 as 0x87
    finally:
        v311.loop_stop()


@pytest.mark.parametrize(("user", "password"), [("backend", "wrong"), ("admin", "admin"), ("backend", None)])
def test_bad_credentials_are_refused(broker: ShippedBroker, user: str, password: str | None) -> None:
    client = Client(broker, user, password)
    assert not client.connected
    assert client.connack is not None and client.connack.value in (0x86, NOT_AUTHORIZED)


def test_every_user_logs_in_with_the_password_from_env_or_secret_file(broker: ShippedBroker) -> None:
    text = broker.password_file.read_text()
    for user in USERS:
        assert text.count(f"{user}:$7$") == 1 or text.count(f"{user}:$6$") == 1, text
        assert broker.passwords[user] not in text, "passwords are stored hashed"
        client = Client(broker, user, broker.passwords[user])
        assert client.connected, f"{user}: {client.connack}"
        client.close()


@pytest.mark.parametrize(
    ("user", "topic", "allowed"),
    [(u, t, True) for u, (ok, _) in WRITES.items() for t in ok]
    + [(u, t, False) for u, (_, no) in WRITES.items() for t in no],
)
def test_publish_rights(clients: dict[str, Client], user: str, topic: str, allowed: bool) -> None:
    payload = token()
    watcher = clients["homeassistant"]  # reads dsmr/# and homeassistant/#: every topic here
    reason = clients[user].publish(topic, payload)
    await_control(clients[user], watcher)
    if allowed:
        assert not reason.is_failure, f"{user} may publish {topic}: {reason}"
        assert watcher.got(topic, payload)
    else:
        assert reason.value == NOT_AUTHORIZED, f"{user} must not publish {topic}"
        assert not watcher.got(topic, payload), "a refused publish must reach nobody"


@pytest.mark.parametrize(("reader", "topic", "writer", "readable"), READS)
def test_read_rights(
    clients: dict[str, Client], reader: str, topic: str, writer: str, readable: bool
) -> None:
    payload = token()
    assert not clients[writer].publish(topic, payload).is_failure, f"{writer} writes {topic}"
    await_control(clients[reader], clients[reader])
    assert clients[reader].got(topic, payload) is readable, f"{reader} reading {topic}"


def test_retained_values_are_filtered_too(broker: ShippedBroker, clients: dict[str, Client]) -> None:
    topic, payload = "dsmr/reading/electricity_currently_delivered", token()
    assert not clients["backend"].publish(topic, payload, retain=True).is_failure
    try:
        pvoutput = Client(broker, "pvoutput", broker.passwords["pvoutput"])
        plugins = Client(broker, "plugins", broker.passwords["plugins"])
        for late in (pvoutput, plugins):
            late.subscribe("dsmr/#")
            await_control(late, late)
        assert plugins.got(topic, payload)
        assert not pvoutput.got(topic, payload)
        pvoutput.close()
        plugins.close()
    finally:
        clients["backend"].publish(topic, b"", retain=True)


def test_retained_values_survive_a_restart() -> None:
    with shipped_broker() as broker:
        backend = Client(broker, "backend", broker.passwords["backend"])
        assert not backend.publish("dsmr/meter-stats/dsmr_version", b"50", retain=True).is_failure
        backend.close()
        broker.stop()
        assert "Saving in-memory database" in broker.log()
        assert "Error" not in broker.log(), broker.log()
        broker.start(env_users=USERS, secret_users=())
        reader = Client(broker, "homeassistant", broker.passwords["homeassistant"])
        reader.subscribe("dsmr/meter-stats/#")
        wait_for(lambda: reader.got("dsmr/meter-stats/dsmr_version", b"50"), 10, message="the retained value")
        reader.close()


def test_the_tls_listener_has_the_same_users_and_acl() -> None:
    with shipped_broker(make_certs=True) as broker:
        assert broker.tls_certs is not None
        assert (broker.tls_certs / "server.key").stat().st_mode & 0o077 == 0, "a private key, as on a host"
        anonymous = Client(broker, None, tls=True)
        assert anonymous.connack is not None and anonymous.connack.value == NOT_AUTHORIZED
        plugins = Client(broker, "plugins", broker.passwords["plugins"], tls=True)
        assert plugins.connected, plugins.connack
        assert plugins.publish(RAW).value == NOT_AUTHORIZED
        assert not plugins.publish("dsmr/plugins/tls/check/sender").is_failure
        plugins.close()


def make_bus(
    broker: ShippedBroker, user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object
) -> Bus:
    """A real service bus configured as compose does: DSMR_MQTT_USERNAME + DSMR_MQTT_PASSWORD_FILE."""
    secret = tmp_path / f"{user}_mqtt_password"
    secret.write_text(broker.passwords[user] + "\n")
    monkeypatch.setenv("DSMR_MQTT_HOST", broker.host)
    monkeypatch.setenv("DSMR_MQTT_PORT", str(broker.port))
    monkeypatch.setenv("DSMR_MQTT_USERNAME", user)
    monkeypatch.setenv("DSMR_MQTT_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("DSMR_MQTT_CLIENT_ID", f"dsmr-{user}-test-{uuid.uuid4().hex[:6]}")
    return Bus(ServiceSettings().mqtt_config(), user, **kwargs)  # type: ignore[arg-type]


def test_each_service_does_its_job_through_the_acl(
    broker: ShippedBroker, clients: dict[str, Client], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data path of DESIGN.md, hop by hop, with real service buses and the shipped ACL."""
    heard: dict[str, list[Message]] = {}

    def recorder(name: str) -> Callable[[Message], None]:
        heard[name] = []
        return heard[name].append

    datalogger = make_bus(broker, "datalogger", tmp_path, monkeypatch)
    backend = make_bus(broker, "backend", tmp_path, monkeypatch, share_group="dsmr")
    backend.subscribe("dsmr/dsmr_datalogger/signals/raw_telegram/+", recorder("backend"), shared=True)
    backend.subscribe("homeassistant/status", recorder("backend-ha"))
    pvoutput = make_bus(broker, "pvoutput", tmp_path, monkeypatch)
    pvoutput.subscribe("dsmr/json", recorder("pvoutput"))
    plugins = make_bus(broker, "plugins", tmp_path, monkeypatch)
    plugins.subscribe("dsmr/#", recorder("plugins"))
    buses = (datalogger, backend, pvoutput, plugins)
    try:
        for bus in buses:
            bus.start()
        for bus in buses:
            assert bus.wait_connected(10), f"{bus.service} could not log in"
            wait_for(lambda b=bus: clients["homeassistant"].got(b.state_topic, b"online"), 10)  # type: ignore[misc]
        hops: list[tuple[Bus | Client, str, str]] = [
            (datalogger, RAW, "backend"),
            (clients["homeassistant"], "homeassistant/status", "backend-ha"),
            (backend, "dsmr/json", "pvoutput"),
            (backend, POST_SAVE, "plugins"),
            (pvoutput, PV_UPLOAD, "plugins"),
        ]
        for sender, topic, receiver in hops:
            payload = token()
            if isinstance(sender, Bus):
                assert sender.publish_and_wait(topic, payload, timeout=10)
            else:
                assert not sender.publish(topic, payload).is_failure
            wait_for(
                lambda r=receiver, t=topic, p=payload: any(  # type: ignore[misc]
                    m.topic == t and m.payload == p for m in heard[r]
                ),
                10,
                message=f"{topic} to reach {receiver}",
            )
    finally:
        for bus in buses:
            bus.close()


def test_a_bus_publish_the_acl_refuses_is_reported_not_acknowledged(
    broker: ShippedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A datalogger spool deletes a telegram only after a real acknowledgement, never after a 0x87."""
    plugins = make_bus(broker, "plugins", tmp_path, monkeypatch)
    plugins.start()
    try:
        assert plugins.wait_connected(10)
        refused = plugins.publish(RAW, token(), qos=1)
        assert not refused.wait(10)
        assert refused.poll() is False  # answered, with a refusal: an outbox keeps such a row
        assert plugins.counters.get("publish_refused") == 1
        assert "refused the publish to " + RAW in caplog.text
        assert plugins.publish_and_wait("dsmr/plugins/mine/x", token(), timeout=10)
    finally:
        plugins.close()


def run_healthcheck(broker: ShippedBroker, user: str, password: str, tmp_path: Path) -> tuple[int, str]:
    """Run docker/healthcheck.py the way the image does, with the service's credentials."""
    secret = tmp_path / "healthcheck_password"
    secret.write_text(password)
    env = {
        "PATH": "/usr/bin:/bin",
        "DSMR_SERVICE": user,
        "DSMR_MQTT_HOST": broker.host,
        "DSMR_MQTT_PORT": str(broker.port),
        "DSMR_MQTT_USERNAME": user,
        "DSMR_MQTT_PASSWORD_FILE": str(secret),
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "docker" / "healthcheck.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_healthcheck_follows_the_service_state(
    broker: ShippedBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = make_bus(broker, "pvoutput", tmp_path, monkeypatch)
    bus.start()
    assert bus.wait_connected(10)
    try:
        assert run_healthcheck(broker, "pvoutput", broker.passwords["pvoutput"], tmp_path) == (
            0,
            "pvoutput: online\n",
        )
        code, output = run_healthcheck(broker, "pvoutput", "wrong", tmp_path)
        assert code == 1 and "refused" in output
    finally:
        bus.close()
    code, output = run_healthcheck(broker, "pvoutput", broker.passwords["pvoutput"], tmp_path)
    assert (code, output) == (1, "pvoutput: state is 'offline'\n")


def run_entrypoint(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """entrypoint.sh with a harmless command instead of mosquitto: prints the password file."""
    passwd = tmp_path / "auth" / "passwd"
    base = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "MOSQUITTO_PASSWORD_FILE": str(passwd),
        "MOSQUITTO_ACL_SOURCE": str(MOSQUITTO_DIR / "acl"),
        "MOSQUITTO_SECRETS_DIR": str(tmp_path / "no-secrets"),
        "MOSQUITTO_CONF_D": str(tmp_path / "conf.d"),
        "MOSQUITTO_DATA_DIR": str(tmp_path / "data"),
        "MOSQUITTO_CERTS_SOURCE": str(tmp_path / "no-certs"),
    }
    return subprocess.run(
        ["sh", str(MOSQUITTO_DIR / "entrypoint.sh"), "cat", str(passwd)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_entrypoint_refuses_to_start_without_any_password(tmp_path: Path) -> None:
    done = run_entrypoint({}, tmp_path)
    assert done.returncode == 1
    assert "no MQTT password given for any user" in done.stderr
    assert done.stdout == "", "the broker command must not run"


def test_entrypoint_leaves_out_a_user_without_password(tmp_path: Path) -> None:
    done = run_entrypoint({"MQTT_BACKEND_PASSWORD": "secret"}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backend:$") and done.stdout.count("\n") == 1
    assert "no password for 'homeassistant'" in done.stderr
    assert (tmp_path / "auth" / "acl").read_text() == (MOSQUITTO_DIR / "acl").read_text()
    assert (tmp_path / "conf.d").is_dir()


def test_shipped_config_raises_the_queue_limits() -> None:
    config = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    options = dict(
        line.split(None, 1) for line in config.splitlines() if line.strip() and not line.startswith("#")
    )
    assert int(options["max_queued_messages"]) >= 100_000
    assert options["allow_anonymous"] == "false"
    assert options["persistence"] == "true"
