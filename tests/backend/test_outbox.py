"""The signal outbox on SQLite and PostgreSQL with a real mosquitto: post_save survives a crash.

A post_save envelope is written in the transaction of the records it announces, published after
the commit, and deleted once the broker acknowledged it; whatever a crash leaves in between is
published at the next start with the id it was first sent with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from dsmr_backend.analytics import DayRows, compute_day
from dsmr_backend.outbox import Outbox, Staging
from dsmr_backend.record_signals import envelopes as record_envelopes
from dsmr_backend.record_signals import reading_envelopes
from dsmr_backend.signals import post_save
from dsmr_backend.storage import outbox as outbox_rows
from dsmr_backend.storage.statistics_store import StatisticsStore
from dsmr_backend.storage.store import ReadingStore
from dsmr_shared import signals
from dsmr_shared.bus import Bus
from dsmr_shared.counters import Counters
from dsmr_shared.settings import ServiceSettings
from dsmr_shared.signals import Signal
from tests.backend.analytics.generator import Scenario, generate
from tests.backend.conftest import Runner
from tests.backend.stored import meter_id, store_points
from tests.backend.telegrams import envelope, raw_topic, v5_at, v5_item, v5_utc
from tests.helpers import Mosquitto, Probe, wait_for

pytestmark = pytest.mark.services

POST_SAVE_READING = "dsmr/dsmr_backend/signals/post_save/DsmrReading"
ProbeFactory = Callable[..., Probe]


def rows_in(store: ReadingStore) -> list[outbox_rows.OutboxRow]:
    """Every outbox row, oldest first."""
    with store.engine.connect() as connection:
        return outbox_rows.oldest(connection)


def post_save_relay(store: ReadingStore) -> Outbox:
    """An outbox relay for post_save on the store's database, as the backend builds it."""
    return Outbox(store.engine, Counters(), [post_save])


def newest_readings(outbox: Outbox) -> Staging:
    """A staging with the default post_save mode (the newest reading per meter)."""
    return outbox.staging(partial(reading_envelopes, mode="newest"))


@pytest.fixture
def bus(mosquitto: Mosquitto) -> Iterator[Bus]:
    """A connected bus that signals use; closed afterwards."""
    settings = ServiceSettings(
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_client_id="c-outbox", mqtt_reconnect_max=2
    )
    bus = Bus(settings.mqtt_config(), "outbox-test")
    bus.start()
    assert bus.wait_connected(10)
    signals.use_bus(bus)
    yield bus
    bus.close(timeout=1)


# -- the transaction: records and their envelopes commit together ------------------------------------


def test_post_save_rows_commit_with_the_readings_or_not_at_all(store: ReadingStore) -> None:
    outbox = post_save_relay(store)
    staging = newest_readings(outbox)
    store.save([v5_item(0), v5_item(10), v5_item(5, meter="m2"), v5_item(0)], then=staging)
    assert [(s.envelope.kwargs["instance"]["meter"], s.row_id) for s in staging.staged] == [
        ("m1", rows_in(store)[0].id),
        ("m2", rows_in(store)[1].id),
    ]  # newest mode: one row per meter and batch
    assert staging.staged[0].envelope.kwargs["instance"]["timestamp"] == "2017-01-02T18:20:12+00:00"
    assert [r.payload for r in rows_in(store)] == [s.payload for s in staging.staged]

    def staged_then_killed(connection: sa.Connection, new: Sequence[Any]) -> None:
        newest_readings(outbox)(connection, new)
        assert outbox_rows.count(connection) == 3  # staged in this transaction ...
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError):
        store.save([v5_item(20)], then=staged_then_killed)
    assert len(rows_in(store)) == 2  # ... and rolled back with its reading
    assert store.count_readings() == 3


def test_a_day_and_its_post_save_commit_together(store: ReadingStore) -> None:
    day = date(2025, 6, 2)
    _truth, points = generate(Scenario(day, day, interval_s=300, offset_s=13, seed=5, meter="m1"))
    store_points(store.engine, points)
    rows = compute_day(points, day, now=points[-1].timestamp)
    assert isinstance(rows, DayRows)
    statistics, mid = StatisticsStore(store.engine), meter_id(store.engine, "m1")
    outbox = post_save_relay(store)

    def staged_then_killed(connection: sa.Connection, new: Sequence[Any]) -> None:
        outbox.staging(partial(record_envelopes, mode="newest"))(connection, new)
        raise RuntimeError("killed before the commit")

    with pytest.raises(RuntimeError):
        statistics.save_day(mid, rows, then=staged_then_killed)
    assert rows_in(store) == []
    staging = outbox.staging(partial(record_envelopes, mode="newest"))
    statistics.save_day(mid, rows, then=staging)
    sent = [(s.envelope.sender, s.envelope.kwargs["instance"]) for s in staging.staged]
    assert [kind for kind, _ in sent] == ["HourStatistics", "DayStatistics"]  # the newest of each kind
    assert sent[0][1]["hour_start"] == rows.hours[-1].hour_start.isoformat()
    assert sent[1][1]["day"] == "2025-06-02"
    assert len(rows_in(store)) == 2


# -- the relay: publish after the commit, delete on PUBACK, resend at start --------------------------


def test_a_row_stays_until_the_broker_acknowledged_it(
    store: ReadingStore, bus: Bus, mosquitto: Mosquitto
) -> None:
    outbox = post_save_relay(store)
    mosquitto.stop()
    wait_for(lambda: not bus.connected, message="bus offline")
    staging = newest_readings(outbox)
    store.save([v5_item(0)], then=staging)
    staging.publish()  # paho holds it until the broker is back
    assert outbox.sweep() == 0
    assert outbox.pending() == 1 and len(rows_in(store)) == 1
    mosquitto.start()
    wait_for(lambda: outbox.sweep() == 1, 30, message="the PUBACK, then the delete")
    assert outbox.pending() == 0 and rows_in(store) == []


def test_a_resent_envelope_runs_a_signal_receiver_once(
    store: ReadingStore, bus: Bus, mqtt_client: ProbeFactory
) -> None:
    signal = Signal("outbox_test.signals.saved")
    heard: list[str] = []
    signal.connect(lambda sender, key, **_: heard.append(key))
    assert bus.wait_subscribed(10)
    probe = mqtt_client()
    probe.subscribe(signal.topic())
    outbox = Outbox(store.engine, Counters(), [signal])
    staging = outbox.staging(lambda new: [signal.envelope("m1", key=r.timestamp.isoformat()) for r in new])
    store.save([v5_item(0)], then=staging)
    first = staging.staged[0].envelope.id
    staging.publish()
    wait_for(lambda: heard == [v5_utc(0).isoformat()], message="the first delivery")
    # A crash before the sweep: the next start's relay finds the row and sends it again.
    assert Outbox(store.engine, Counters(), [signal]).resend() == 1
    signal.send(sender="m1", key="marker")  # same topic, so it arrives after the resend
    wait_for(lambda: heard[-1:] == ["marker"], message="the marker")
    assert heard == [v5_utc(0).isoformat(), "marker"]
    copies = [json.loads(m.payload)["id"] for m in probe.wait_for(signal.topic(), count=3)]
    assert copies[:2] == [first, first] and copies[2] != first  # twice on the wire, run once


# -- the backend: resend at start, nothing lost, nothing doubled ------------------------------------


def test_a_row_left_by_a_crash_is_published_at_start_with_its_id_then_removed(
    store: ReadingStore, database_url: str, run_backend: Runner, mqtt_client: ProbeFactory
) -> None:
    # The previous run committed a reading with its post_save and died before publishing it.
    newest = newest_readings(post_save_relay(store))
    store.save([v5_item(0)], then=newest)
    (left,) = rows_in(store)
    probe = mqtt_client()
    probe.subscribe(POST_SAVE_READING)
    backend = run_backend(
        DSMR_BACKEND_DATABASE_URL=database_url,
        DSMR_BACKEND_STATISTICS="false",
        DSMR_BACKEND_HA_DISCOVERY="false",
    )
    (message,) = probe.wait_for(POST_SAVE_READING, timeout=20)
    assert message.payload == left.payload  # byte for byte, so the same envelope id
    assert json.loads(message.payload)["id"] == newest.staged[0].envelope.id
    wait_for(lambda: rows_in(store) == [], message="the row deleted after its PUBACK")
    assert backend.stats()["outbox_resent"] == 1 and backend.outbox.pending() == 0


def test_post_save_is_heard_once_and_the_outbox_empties_after_the_pubacks(
    store: ReadingStore, database_url: str, run_backend: Runner, mqtt_client: ProbeFactory
) -> None:
    probe = mqtt_client()
    probe.subscribe(POST_SAVE_READING)
    backend = run_backend(
        DSMR_BACKEND_DATABASE_URL=database_url,
        DSMR_BACKEND_POST_SAVE="all",
        DSMR_BACKEND_STATISTICS="false",
    )
    for offset in (0, 10, 0, 20):  # one repeat: a redelivery gets no second post_save
        probe.publish(raw_topic("m1"), envelope("m1", v5_at(offset)))
    wait_for(lambda: store.count_readings() == 3, message="three readings stored")
    probe.wait_for(POST_SAVE_READING, count=3)
    wait_for(lambda: backend.outbox.pending() == 0 and rows_in(store) == [], message="an empty outbox")
    probe.publish(raw_topic("m1"), envelope("m1", v5_at(30)))  # its post_save comes after any stray
    probe.wait_for(POST_SAVE_READING, count=4)
    bodies = [json.loads(m.payload) for m in probe.received(POST_SAVE_READING)]
    stamps = [b["kwargs"]["instance"]["timestamp"] for b in bodies]
    assert stamps == [v5_utc(offset).isoformat() for offset in (0, 10, 20, 30)]
    assert len({b["id"] for b in bodies}) == 4
    assert "outbox_resent" not in backend.stats()
