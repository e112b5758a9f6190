"""The Backend service in this process on a real mosquitto: default meter, discovery once, modes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dsmr_backend import service
from dsmr_backend.decode import Incoming
from dsmr_backend.outputs import READING_FIELDS, STATS_FIELDS
from tests.backend.conftest import Runner
from tests.backend.telegrams import envelope, raw_topic, real_telegrams, v5_at
from tests.helpers import Mosquitto, Probe, wait_for

pytestmark = pytest.mark.services


def test_the_configured_default_meter_owns_the_dsmr_reader_topics(
    run_backend: Runner, mqtt_client: Callable[..., Probe]
) -> None:
    backend = run_backend(DSMR_BACKEND_DEFAULT_METER="kaifa")
    probe = mqtt_client()
    probe.subscribe("dsmr/reading/electricity_delivered_1")
    telegrams = real_telegrams()
    probe.publish(raw_topic("iskra"), envelope("iskra", telegrams["v5"]))
    probe.publish(raw_topic("kaifa"), envelope("kaifa", telegrams["v4_2"]))
    wait_for(lambda: backend.store.count_readings() == 2, message="both stored")
    values = probe.wait_for("dsmr/reading/electricity_delivered_1")
    assert [m.text for m in values] == ["1581.123"]  # never the other meter's 4.426


def test_discovery_is_sent_once_per_meter_not_per_reading(
    run_backend: Runner, mqtt_client: Callable[..., Probe]
) -> None:
    backend = run_backend()
    probe = mqtt_client()
    probe.subscribe("homeassistant/sensor/dsmr_m1/electricity_delivered_1/config")
    probe.subscribe("dsmr/meter/m1/json")
    for offset in (0, 10, 20):
        probe.publish(raw_topic("m1"), envelope("m1", v5_at(offset)))
        probe.wait_for("dsmr/meter/m1/json", count=offset // 10 + 1)  # one batch each
    wait_for(lambda: backend.store.count_readings() == 3)
    assert len(probe.received("homeassistant/#")) == 1


def test_post_save_newest_coalesces_a_burst_like_the_live_outputs(
    run_backend: Runner, mqtt_client: Callable[..., Probe]
) -> None:
    backend = run_backend(DSMR_BACKEND_BATCH_SIZE="1000", DSMR_BACKEND_BATCH_WAIT="0.5")
    probe = mqtt_client()
    probe.subscribe("dsmr/dsmr_backend/signals/post_save/#")
    probe.subscribe("dsmr/meter/m1/json")
    # A burst: 50 telegrams arrive within one batch window.
    payloads = [envelope("m1", v5_at(i)) for i in range(50)]
    for payload in payloads:
        probe.client.publish(raw_topic("m1"), payload, qos=1)
    wait_for(lambda: backend.store.count_readings() == 50, message="burst stored")
    saves = probe.wait_for("dsmr/dsmr_backend/signals/post_save/DsmrReading")
    jsons = probe.wait_for("dsmr/meter/m1/json")
    newest = "2017-01-02T18:20:51+00:00"
    assert json.loads(saves[-1].text)["kwargs"]["instance"]["timestamp"] == newest
    assert json.loads(jsons[-1].text)["timestamp"] == newest
    assert len(saves) == len(jsons) < 50  # coalesced like the live outputs


def test_ingest_waits_for_the_broker_to_acknowledge_its_outputs(
    run_backend: Runner, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    # paho keeps every QoS 1 publish the broker has not acknowledged, without limit: storing at
    # import speed with post_save for every reading grew the backend by ~3.5 KiB a reading.
    monkeypatch.setattr(service, "OUTPUT_BACKLOG", 20)
    monkeypatch.setattr(service, "OUTPUT_WAIT", 60.0)
    backend = run_backend(
        DSMR_BACKEND_POST_SAVE="all",
        DSMR_BACKEND_STATISTICS="false",
        DSMR_BACKEND_HA_DISCOVERY="false",
        DSMR_BACKEND_BATCH_SIZE="10",
    )
    assert backend.bus.wait_unacknowledged(0, timeout=10)
    topic = raw_topic("m1")
    mosquitto.pause()  # the broker acknowledges nothing from here on
    try:
        for offset in range(100):
            backend.ingest.submit(Incoming(topic, envelope("m1", v5_at(offset)), False, lambda: None))
        wait_for(lambda: backend.counters.get("output_waits") == 1, 20, message="ingest holds back")
        # One batch went out (its post_saves and the retained outputs); the rest waits its turn.
        assert backend.ingest.pending() > 0
        one_batch = 10 + 2 * (len(READING_FIELDS) + len(STATS_FIELDS))  # post_saves, 2 roots' topics
        assert backend.bus.unacknowledged() <= 20 + one_batch
    finally:
        mosquitto.resume()
    wait_for(lambda: backend.store.count_readings() == 100, 30, message="all stored")
    assert backend.bus.wait_unacknowledged(0, timeout=20)
    assert backend.counters.get("output_wait_timeouts") == 0
