"""Signals over a real broker: the topic rule, the envelope, isolation and bad payloads."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dsmr_shared import signals
from dsmr_shared.bus import Bus
from dsmr_shared.errors import DsmrError
from dsmr_shared.settings import ServiceSettings
from dsmr_shared.signals import Signal
from tests.helpers import Mosquitto, Probe, wait_for


@pytest.fixture
def bus(mosquitto: Mosquitto) -> Iterator[Bus]:
    settings = ServiceSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    bus = Bus(settings.mqtt_config(), "signals-test")
    bus.start()
    assert bus.wait_connected(10)
    signals.use_bus(bus)
    yield bus
    bus.close()


def test_topic_rule() -> None:
    sig = Signal("dsmr_datalogger.signals.raw_telegram")
    assert sig.topic("meter1") == "dsmr/dsmr_datalogger/signals/raw_telegram/meter1"
    assert sig.topic() == "dsmr/dsmr_datalogger/signals/raw_telegram/+"


def test_send_without_bus_says_what_to_do() -> None:
    signals.use_bus(None)
    with pytest.raises(DsmrError, match="use_bus"):
        Signal("a.b").send(sender="x")


def test_send_publishes_the_envelope(bus: Bus, mqtt_client: Callable[..., Probe]) -> None:
    probe = mqtt_client()
    probe.subscribe("dsmr/#")
    Signal("my_plugin.signals.x").send(sender="me", data={"a": 1})
    (msg,) = probe.wait_for("dsmr/my_plugin/signals/x/me")
    body = json.loads(msg.payload)
    assert set(body) == {"v", "signal", "sender", "id", "sent_at", "kwargs"}
    assert body["v"] == 1 and body["signal"] == "my_plugin.signals.x" and body["sender"] == "me"
    assert body["kwargs"] == {"data": {"a": 1}}
    assert body["sent_at"].endswith("Z") or body["sent_at"].endswith("+00:00")
    assert not msg.retain and msg.qos == 1


def test_tick_signals_go_at_qos_0(bus: Bus, mqtt_client: Callable[..., Probe]) -> None:
    probe = mqtt_client()
    probe.subscribe("dsmr/#", qos=1)
    Signal("t.signals.tick", qos=0).send(sender="b")
    (msg,) = probe.wait_for("dsmr/t/signals/tick/b")
    assert msg.qos == 0


def test_receivers_get_signal_sender_and_kwargs(bus: Bus) -> None:
    calls: list[dict[str, Any]] = []
    sig = Signal("a.signals.s")
    sig.connect(lambda **kw: calls.append(kw))
    sig.send(sender="one", data="x")
    wait_for(lambda: calls)
    assert calls == [{"signal": sig, "sender": "one", "data": "x"}]


def test_a_prepared_envelope_published_twice_runs_receivers_once(
    bus: Bus, mqtt_client: Callable[..., Probe]
) -> None:
    calls: list[int] = []
    sig = Signal("a.signals.prepared")
    sig.connect(lambda n, **_: calls.append(n))
    assert bus.wait_subscribed(10)
    probe = mqtt_client()
    probe.subscribe(sig.topic())
    prepared = sig.envelope("one", n=1)
    payload = prepared.to_json()
    assert sig.publish(prepared, payload).wait(10)
    assert sig.publish(prepared, payload).wait(10)  # a resend: same bytes, same id
    sig.send(sender="one", n=2)  # same topic: arrives after both
    wait_for(lambda: calls[-1:] == [2])
    assert calls == [1, 2]
    assert [m.payload for m in probe.wait_for(sig.topic(), count=3)][:2] == [payload, payload]
    with pytest.raises(DsmrError, match="envelope is for"):
        Signal("a.signals.other").publish(prepared)


def test_connect_with_sender_filters(bus: Bus) -> None:
    any_sender: list[str] = []
    only_b: list[str] = []
    sig = Signal("a.signals.filtered")
    sig.connect(lambda sender, **_: any_sender.append(sender))
    sig.connect(lambda sender, **_: only_b.append(sender), sender="b")
    for name in ("a", "b", "c", "b"):
        sig.send(sender=name)
    wait_for(lambda: len(any_sender) == 4)
    wait_for(lambda: len(only_b) == 2)
    assert only_b == ["b", "b"]
    assert sorted(any_sender) == ["a", "b", "b", "c"]  # overlapping subscriptions run receivers once


def test_connect_before_the_bus_exists_is_subscribed_later(mosquitto: Mosquitto) -> None:
    signals.use_bus(None)
    got: list[str] = []
    sig = Signal("late.signals.s")
    sig.connect(lambda sender, **_: got.append(sender))
    bus = Bus(ServiceSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port).mqtt_config(), "late")
    bus.start()
    signals.use_bus(bus)
    assert bus.wait_connected(10)
    sig.send(sender="z")
    wait_for(lambda: got == ["z"])
    bus.close()


def test_a_raising_receiver_is_logged_by_name_and_others_run(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []

    def broken_receiver(**_: Any) -> None:
        raise ValueError("kaputt")

    sig = Signal("iso.signals.s")
    sig.connect(broken_receiver)
    sig.connect(lambda sender, **_: got.append(sender))
    sig.send(sender="s1")
    wait_for(lambda: got == ["s1"])
    wait_for(lambda: bus.counters.get("receiver_errors") == 1)
    assert "broken_receiver" in caplog.text and "kaputt" in caplog.text


def test_disconnect_stops_delivery(bus: Bus) -> None:
    got: list[int] = []
    witness: list[int] = []
    sig = Signal("d.signals.s")

    def receiver(n: int, **_: Any) -> None:
        got.append(n)

    sig.connect(receiver)
    sig.connect(receiver)  # connecting twice binds once, as in Django
    sig.connect(lambda n, **_: witness.append(n), dispatch_uid="witness")
    sig.send(sender="s", n=1)
    wait_for(lambda: witness == [1])
    assert sig.disconnect(receiver)
    assert not sig.disconnect(receiver)
    sig.send(sender="s", n=2)
    wait_for(lambda: witness == [1, 2])
    assert got == [1]
    assert sig.disconnect(dispatch_uid="witness")
    assert not sig.has_listeners()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b"{}",
        json.dumps(
            {"v": 2, "signal": "bad.signals.s", "sender": "x", "id": "1", "sent_at": "2026-01-01T00:00:00Z"}
        ).encode(),
        json.dumps(
            {"v": 1, "signal": "other.signal", "sender": "x", "id": "1", "sent_at": "2026-01-01T00:00:00Z"}
        ).encode(),
        json.dumps(
            {"v": 1, "signal": "bad.signals.s", "sender": "y", "id": "1", "sent_at": "2026-01-01T00:00:00Z"}
        ).encode(),
        json.dumps(
            {
                "v": 1,
                "signal": "bad.signals.s",
                "sender": "x",
                "id": "1",
                "sent_at": "2026-01-01T00:00:00Z",
                "extra": 1,
            }
        ).encode(),
        b"x" * (5 * 1024 * 1024),
    ],
    ids=["text", "list", "empty", "version", "signal", "sender", "extra", "huge"],
)
def test_invalid_payloads_are_counted_and_dropped(
    bus: Bus, mqtt_client: Callable[..., Probe], payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[str] = []
    sig = Signal("bad.signals.s")
    sig.connect(lambda sender, **_: got.append(sender))
    assert bus.wait_subscribed(10)
    mqtt_client().publish("dsmr/bad/signals/s/x", payload)
    wait_for(lambda: bus.counters.get("invalid_payloads") >= 1)
    assert "dsmr/bad/signals/s/x" in caplog.text
    sig.send(sender="x")
    wait_for(lambda: got == ["x"])  # still alive and dispatching
