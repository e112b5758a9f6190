"""The dsmr-backend process on a real mosquitto: store, publish, discover, survive SIGKILL and junk."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from tests.backend.telegrams import envelope, raw_topic, real_telegrams, v5, v5_at
from tests.helpers import (
    TELEGRAMS,
    Mosquitto,
    Probe,
    ServiceProcess,
    console_script,
    wait_for,
)

pytestmark = pytest.mark.services

STATE = "dsmr/service/backend/state"
POST_SAVE_READING = "dsmr/dsmr_backend/signals/post_save/DsmrReading"
ProbeFactory = Callable[..., Probe]


class Backend:
    """A dsmr-backend subprocess on the test's broker, with its SQLite file."""

    def __init__(self, broker: Mosquitto, workdir: Path, **env: str) -> None:
        self.database = workdir / "data" / "dsmr.sqlite3"
        self.env = {
            **broker.env(),
            "DSMR_BACKEND_DATA_DIR": str(workdir / "data"),
            "DSMR_BACKEND_LOOP_INTERVAL": "0.2",
            **env,
        }
        self.process = ServiceProcess([console_script("dsmr-backend")], self.env, cwd=workdir)

    def start(self) -> Backend:
        self.process.start()
        self.process.wait_for_output("started", 30)
        return self

    def count(self) -> int:
        try:
            with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
                return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def wait_count(self, expected: int, timeout: float = 60.0, at_least: bool = False) -> None:
        """Wait until ``expected`` readings are stored; on timeout show the count and the log."""

        def done() -> bool:
            count = self.count()
            return count >= expected if at_least else count == expected

        try:
            wait_for(done, timeout, 0.005, f"{expected} readings stored")
        except AssertionError as exc:
            tail = self.process.output()[-3000:]
            raise AssertionError(f"{exc}; have {self.count()}; backend log:\n{tail}") from None

    def timestamps(self) -> list[str]:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5) as conn:
            return [r[0] for r in conn.execute("SELECT timestamp FROM readings")]

    def counters(self) -> dict[str, int]:
        """The counters the backend logs when it stops."""
        found = re.findall(r"counters: (\{.*\})", self.process.output())
        assert found, self.process.output()
        return {k: int(v) for k, v in re.findall(r"'([^']+)': (\d+)", found[-1])}


@pytest.fixture
def backends(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def make(workdir: Path | None = None, **env: str) -> Backend:
        backend = Backend(mosquitto, workdir or tmp_path, **env)
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.process.close()


def online(probe: Probe) -> None:
    probe.subscribe(STATE)
    probe.wait_for(STATE, where=lambda m: m.text == "online", timeout=20)


def publish_fast(broker: Mosquitto, payloads: list[tuple[str, bytes]]) -> threading.Thread:
    """Publish at QoS 1 from a background thread as fast as the broker takes them."""

    def run() -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fast-publisher")
        client.max_inflight_messages_set(200)
        client.connect(broker.host, broker.port)
        client.loop_start()
        infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
        for info in infos:
            info.wait_for_publish(60)
        client.disconnect()
        client.loop_stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def retained_text(probe: Probe, topic: str, timeout: float = 10.0) -> str:
    return probe.wait_for(topic, timeout=timeout)[-1].text


def test_every_real_telegram_is_stored_published_and_discovered(
    backends: Callable[..., Backend], mqtt_client: ProbeFactory
) -> None:
    backend = backends().start()
    probe = mqtt_client()
    probe.subscribe("#")
    online(probe)
    telegrams = real_telegrams()
    probe.publish(raw_topic("v5"), envelope("v5", telegrams["v5"]))  # the first: default meter
    backend.wait_count(1)
    for name, text in telegrams.items():
        if name != "v5":
            probe.publish(raw_topic(name), envelope(name, text))
    backend.wait_count(len(telegrams), 20)

    for name in telegrams:
        expected = json.loads((TELEGRAMS / f"{name}.expected.json").read_text())["objects"]
        document = json.loads(retained_text(probe, f"dsmr/meter/{name}/json"))
        assert document["meter"] == name
        for ours, theirs, unit in (
            ("electricity_delivered_1", "ELECTRICITY_USED_TARIFF_1", "kWh"),
            ("electricity_returned_2", "ELECTRICITY_DELIVERED_TARIFF_2", "kWh"),
            ("electricity_currently_delivered", "CURRENT_ELECTRICITY_USAGE", "kW"),
            ("phase_voltage_l1", "INSTANTANEOUS_VOLTAGE_L1", "V"),
        ):
            value = expected.get(theirs)
            if value and value["unit"] == unit:  # the same register, in the same unit
                assert document[ours] == pytest.approx(value["value"]), (name, ours)
    # The default meter's DSMR-reader topics, formatted as DSMR-reader does.
    assert retained_text(probe, "dsmr/reading/electricity_delivered_1") == "4.426"
    assert retained_text(probe, "dsmr/reading/electricity_returned_2") == "0.000"
    assert retained_text(probe, "dsmr/reading/phase_voltage_l3") == "229.0"
    assert retained_text(probe, "dsmr/reading/timestamp") == "2017-01-02T18:20:02+00:00"
    assert retained_text(probe, "dsmr/reading/extra_device_delivered") == "0.107"
    assert retained_text(probe, "dsmr/meter-stats/power_failure_count") == "13"
    assert retained_text(probe, "dsmr/meter-stats/rejected_telegrams") == "0"
    assert retained_text(probe, "dsmr/meter-stats/latest_telegram").startswith("/ISk5")
    assert all(m.retain is False for m in probe.received("dsmr/json"))  # live, never retained
    assert json.loads(probe.received("dsmr/json")[0].text)["meter"] == "v5"

    config = json.loads(retained_text(probe, "homeassistant/sensor/dsmr_v5/electricity_delivered_1/config"))
    assert config["state_topic"] == "dsmr/meter/v5/reading/electricity_delivered_1"
    assert (config["device_class"], config["state_class"]) == ("energy", "total_increasing")
    assert config["unit_of_measurement"] == "kWh"
    assert config["device"]["identifiers"] == ["dsmr_K8EG004046395507"]
    assert config["device"]["model"] == "ISk5\\2MT382-1000"
    assert config["availability_mode"] == "all"
    assert {a["topic"] for a in config["availability"]} == {
        "dsmr/service/backend/state",
        "dsmr/service/datalogger/state",
    }
    assert config["origin"]["name"] == "dsmr-mqtt"
    gas = json.loads(retained_text(probe, "homeassistant/sensor/dsmr_v5/extra_device_delivered/config"))
    assert (gas["device_class"], gas["state_class"]) == ("gas", "total_increasing")
    assert backend.process.stop() == 0


def test_sigkill_mid_stream_loses_nothing_and_stores_nothing_twice(
    backends: Callable[..., Backend], mosquitto: Mosquitto, mqtt_client: ProbeFactory
) -> None:
    total = 1500
    backend = backends(
        DSMR_BACKEND_BATCH_SIZE="5", DSMR_BACKEND_HA_DISCOVERY="false", DSMR_BACKEND_POST_SAVE="all"
    ).start()
    probe = mqtt_client()
    probe.subscribe(POST_SAVE_READING)
    online(probe)
    payloads = [(raw_topic("m1"), envelope("m1", v5_at(i))) for i in range(total)]
    publisher = publish_fast(mosquitto, payloads)
    backend.wait_count(50, at_least=True)
    backend.process.kill()  # SIGKILL: no clean shutdown, unacked messages stay at the broker
    at_kill = backend.count()
    assert at_kill < total, "the stream ended before the kill; nothing was tested"
    publisher.join(60)
    backend.start()
    backend.wait_count(total, 120)
    stamps = backend.timestamps()
    assert len(stamps) == len(set(stamps)) == total
    # Every reading's post_save reached the broker, even one whose commit the kill beat its
    # publish to (the outbox resends it at start), always under one envelope id per reading.
    ids = wait_for(lambda: post_save_ids(probe, total), 60, message=f"{total} readings' post_save")
    assert all(len(seen) == 1 for seen in ids.values())
    assert backend.process.stop() == 0


def post_save_ids(probe: Probe, readings: int) -> dict[str, set[str]]:
    """Reading time -> the envelope ids its post_save came with, once every reading has one."""
    ids: dict[str, set[str]] = {}
    for message in probe.received(POST_SAVE_READING):
        body = json.loads(message.payload)
        ids.setdefault(body["kwargs"]["instance"]["timestamp"], set()).add(body["id"])
    return ids if len(ids) >= readings else {}


def test_two_thousand_malformed_payloads_leave_it_up_and_counting(
    backends: Callable[..., Backend], mosquitto: Mosquitto, mqtt_client: ProbeFactory
) -> None:
    backend = backends(DSMR_BACKEND_HA_DISCOVERY="false").start()
    probe = mqtt_client()
    probe.subscribe("dsmr/#")
    online(probe)
    bad_crc = v5().replace("!6EEE", "!1234")
    kinds = [
        b"{not json",
        json.dumps({"v": 1, "signal": "x"}).encode(),
        envelope("other", v5()),  # sender differs from the topic
        envelope("m1", bad_crc),
        envelope("m1", "/no end line\r\n"),
    ]
    payloads = [(raw_topic("m1"), kinds[i % len(kinds)]) for i in range(1999)]
    payloads.append((raw_topic("m1"), b"\x00" * 10_000_000))
    publish_fast(mosquitto, payloads).join(60)
    probe.publish(raw_topic("m1"), envelope("m1", v5()))
    backend.wait_count(1, 30)
    probe.wait_for("dsmr/meter-stats/rejected_telegrams", where=lambda m: m.text == "2000", timeout=20)
    assert backend.process.process is not None and backend.process.process.poll() is None
    assert backend.process.stop() == 0
    counters = backend.counters()
    assert counters["rejected_telegrams"] == 2000
    assert counters["rejected_bad_telegram"] == 799  # bad CRC + no end line
    assert "rejected a message on" in backend.process.output()


def test_discovery_is_resent_when_home_assistant_comes_online(
    backends: Callable[..., Backend], mqtt_client: ProbeFactory
) -> None:
    backend = backends().start()
    probe = mqtt_client()
    online(probe)
    probe.publish(raw_topic("m1"), envelope("m1", v5()))
    backend.wait_count(1)
    probe.subscribe("homeassistant/sensor/#")
    probe.wait_for("homeassistant/sensor/dsmr_m1/+/config", timeout=10)  # retained copies
    probe.clear()
    probe.publish("homeassistant/status", "online")
    fresh = probe.wait_for("homeassistant/sensor/dsmr_m1/electricity_delivered_1/config")
    assert fresh[-1].retain is False  # a live re-publish, not the retained copy
    assert backend.process.stop() == 0


def test_discovery_and_retained_state_are_resent_after_a_reconnect(
    backends: Callable[..., Backend], mosquitto: Mosquitto, mqtt_client: ProbeFactory
) -> None:
    backend = backends().start()
    probe = mqtt_client()
    online(probe)
    probe.publish(raw_topic("m1"), envelope("m1", v5()))
    backend.wait_count(1)
    probe.close()
    mosquitto.stop()
    mosquitto.start()  # same port and persistence: the backend reconnects by itself
    after = Probe(mosquitto)
    try:
        after.subscribe("homeassistant/sensor/dsmr_m1/+/config")
        after.subscribe("dsmr/meter/m1/reading/electricity_delivered_1")
        live = after.wait_for("#", where=lambda m: not m.retain and "/config" in m.topic, timeout=30)
        assert live[0].topic.startswith("homeassistant/sensor/dsmr_m1/")
        # The outputs cache was reset: retained values go out again on the new connection.
        after.wait_for("dsmr/meter/m1/reading/#", where=lambda m: not m.retain, timeout=10)
    finally:
        after.close()
    assert backend.process.stop() == 0


def test_discovery_can_be_switched_off(backends: Callable[..., Backend], mqtt_client: ProbeFactory) -> None:
    backend = backends(DSMR_BACKEND_HA_DISCOVERY="false").start()
    probe = mqtt_client()
    probe.subscribe("#")
    online(probe)
    probe.publish(raw_topic("m1"), envelope("m1", v5()))
    probe.wait_for("dsmr/meter/m1/json")
    assert probe.received("homeassistant/#") == []
    assert backend.process.stop() == 0


def test_backend_called_ticks_and_post_save_follows_each_new_reading(
    backends: Callable[..., Backend], mqtt_client: ProbeFactory
) -> None:
    backend = backends(
        DSMR_BACKEND_NAME="b1", DSMR_BACKEND_POST_SAVE="all", DSMR_BACKEND_STATS_SECONDS="0.1"
    ).start()
    probe = mqtt_client()
    probe.subscribe("dsmr/dsmr_backend/signals/#")
    probe.subscribe("dsmr/service/backend/stats/b1")
    online(probe)
    ticks = probe.wait_for("dsmr/dsmr_backend/signals/backend_called/b1", count=2)
    iterations = [json.loads(t.text)["kwargs"]["iteration"] for t in ticks]
    assert iterations == sorted(iterations) and len(set(iterations)) == len(iterations)
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(0)))
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(0)))  # a repeat: no second post_save
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(10)))
    saves = probe.wait_for("dsmr/dsmr_backend/signals/post_save/DsmrReading", count=2)
    kwargs = [json.loads(s.text)["kwargs"] for s in saves]
    assert [k["instance"]["timestamp"] for k in kwargs] == [
        "2017-01-02T18:20:02+00:00",
        "2017-01-02T18:20:12+00:00",
    ]
    assert kwargs[0]["created"] is True
    assert kwargs[0]["instance"]["meter"] == "m1"
    assert kwargs[0]["instance"]["electricity_delivered_1"] == 4.426
    backend.wait_count(2)
    assert len(probe.received("dsmr/dsmr_backend/signals/post_save/#")) == 2
    stats = probe.wait_for(
        "dsmr/service/backend/stats/b1",
        where=lambda m: json.loads(m.text).get("stored_readings") == 2,
    )
    assert json.loads(stats[-1].text)["duplicate_readings"] == 1
    assert "outbox_pending" in json.loads(stats[-1].text)  # post_save published, PUBACK awaited
    assert backend.process.stop() == 0


def test_plain_text_telegrams_from_a_dongle(
    backends: Callable[..., Backend], mqtt_client: ProbeFactory
) -> None:
    backend = backends(DSMR_BACKEND_PLAIN_TOPIC="dongle/+/telegram").start()
    probe = mqtt_client()
    probe.subscribe("dsmr/meter/+/json")
    online(probe)
    probe.publish("dongle/kitchen/telegram", v5().encode("latin-1"))
    message = probe.wait_for("dsmr/meter/+/json")[0]
    assert message.topic == "dsmr/meter/K8EG004046395507/json"
    assert backend.count() == 1
    assert backend.process.stop() == 0


def test_two_replicas_split_one_stream_with_a_shared_subscription(
    backends: Callable[..., Backend],
    mosquitto: Mosquitto,
    mqtt_client: ProbeFactory,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    total = 400
    replicas = []
    for name in ("r1", "r2"):
        workdir = tmp_path / name
        workdir.mkdir()
        replicas.append(
            backends(
                workdir,
                DSMR_BACKEND_NAME=name,
                DSMR_BACKEND_SHARE_GROUP="g",
                DSMR_BACKEND_DATABASE_URL=postgres_url,
                DSMR_BACKEND_HA_DISCOVERY="false",
                DSMR_BACKEND_BATCH_SIZE="10",
            ).start()
        )
    probe = mqtt_client()
    probe.subscribe(STATE)
    probe.wait_for(STATE, where=lambda m: m.text == "online", timeout=20)
    engine = sa.create_engine(postgres_url)

    def stored() -> int:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT count(*) FROM readings").scalar_one())

    payloads = [(raw_topic(f"m{i % 3}"), envelope(f"m{i % 3}", v5_at(i))) for i in range(total)]
    publish_fast(mosquitto, payloads).join(60)
    wait_for(lambda: stored() == total, 60, message=f"{total} readings in PostgreSQL")
    engine.dispose()
    for replica in replicas:
        assert replica.process.stop(signal.SIGTERM) == 0
    counts = [r.counters() for r in replicas]
    assert all(c.get("stored_readings", 0) > 0 for c in counts), counts  # both did work
    assert sum(c["stored_readings"] for c in counts) == total
    assert all(c.get("duplicate_readings", 0) == 0 for c in counts)  # nobody did it twice


def test_help_lists_every_backend_setting() -> None:
    process = ServiceProcess([console_script("dsmr-backend"), "--help"], {})
    process.start()
    assert process.process is not None and process.process.wait(30) == 0
    text = process.output()
    for name in (
        "DSMR_BACKEND_DATABASE_URL",
        "DSMR_BACKEND_HA_DISCOVERY",
        "DSMR_BACKEND_SHARE_GROUP",
        "DSMR_BACKEND_PLAIN_TOPIC",
        "DSMR_MQTT_HOST",
    ):
        assert name in text
    process.close()


def test_a_bad_setting_exits_2_naming_the_variable() -> None:
    process = ServiceProcess([console_script("dsmr-backend")], {"DSMR_BACKEND_SHARE_GROUP": "a/b"})
    process.start()
    assert process.process is not None and process.process.wait(30) == 2
    assert "DSMR_BACKEND_SHARE_GROUP" in process.output()
    process.close()


def test_a_late_older_telegram_is_stored_but_does_not_roll_the_live_state_back(
    backends: Callable[..., Backend], mqtt_client: ProbeFactory
) -> None:
    backend = backends(DSMR_BACKEND_HA_DISCOVERY="false").start()
    probe = mqtt_client()
    online(probe)
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(60)))
    backend.wait_count(1)
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(0)))  # e.g. from a replayed spool
    backend.wait_count(2)
    probe.publish(raw_topic("m2"), envelope("m2", v5_at(0)))  # a marker: m1's batch is done
    backend.wait_count(3)
    later = mqtt_client()
    later.subscribe("dsmr/meter/m1/reading/timestamp")
    assert retained_text(later, "dsmr/meter/m1/reading/timestamp") == "2017-01-02T18:21:02+00:00"
    assert backend.process.stop() == 0
