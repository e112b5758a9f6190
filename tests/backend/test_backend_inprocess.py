"""The Backend service in this process on a real mosquitto: default meter, discovery once, modes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.backend.conftest import Runner
from tests.backend.telegrams import envelope, raw_topic, real_telegrams, v5_at
from tests.helpers import Probe, wait_for

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
