"""The bus against a real mosquitto: availability, reconnects, subscriptions, acks."""

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dsmr_shared.bus import Bus, Handler, Message, backoff_delay
from dsmr_shared.settings import ServiceSettings
from tests.helpers import Mosquitto, Probe, ServiceProcess, wait_for


def make_bus(
    broker: Mosquitto, service: str = "test", subscribe: dict[str, Handler] | None = None, **kwargs: object
) -> Bus:
    settings = ServiceSettings(mqtt_host=broker.host, mqtt_port=broker.port, mqtt_client_id=f"c-{service}")
    bus = Bus(settings.mqtt_config(), service, **kwargs)  # type: ignore[arg-type]
    for topic_filter, handler in (subscribe or {}).items():
        bus.subscribe(topic_filter, handler)
    bus.start()
    assert bus.wait_connected(10)
    return bus


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert all(0.25 <= backoff_delay(0) <= 0.5 for _ in range(50))
    assert all(15 <= backoff_delay(20) <= 30 for _ in range(50))
    assert len({backoff_delay(3) for _ in range(20)}) > 1


def test_online_on_connect_and_offline_on_close(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    probe = mqtt_client()
    probe.subscribe("dsmr/service/test/state")
    bus = make_bus(mosquitto)
    probe.wait_for("dsmr/service/test/state", where=lambda m: m.payload == b"online")
    bus.close()
    probe.wait_for("dsmr/service/test/state", where=lambda m: m.payload == b"offline")
    late = mqtt_client()
    late.subscribe("dsmr/service/test/state")
    (retained,) = late.wait_for("dsmr/service/test/state")
    assert retained.retain and retained.payload == b"offline"


def test_last_will_says_offline_when_the_process_dies(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    code = (
        "import threading;"
        "from dsmr_shared.bus import Bus;"
        "from dsmr_shared.settings import ServiceSettings;"
        "b = Bus(ServiceSettings().mqtt_config(), 'victim'); b.start(); b.wait_connected(10);"
        "print('connected', flush=True); threading.Event().wait()"
    )
    proc = ServiceProcess([sys.executable, "-c", code], mosquitto.env()).start()
    try:
        proc.wait_for_output("connected")
        probe = mqtt_client()
        probe.subscribe("dsmr/service/victim/state")
        probe.wait_for("dsmr/service/victim/state", where=lambda m: m.payload == b"online")
        proc.stop(signal.SIGKILL)
        probe.wait_for("dsmr/service/victim/state", where=lambda m: m.payload == b"offline")
    finally:
        proc.close()


def test_reconnects_and_restores_subscriptions_after_broker_restart(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    received: list[bytes] = []
    bus = make_bus(mosquitto)
    bus.subscribe("t/#", lambda m: received.append(m.payload))
    probe = mqtt_client()
    probe.publish("t/1", b"before")
    wait_for(lambda: received == [b"before"])
    probe.close()
    mosquitto.stop()
    wait_for(lambda: not bus.connected, message="bus noticed the broker left")
    mosquitto.start()
    assert bus.wait_connected(40)
    mqtt_client().publish("t/2", b"after")
    wait_for(lambda: received == [b"before", b"after"])
    assert bus.counters.get("disconnects") == 1
    bus.close()


def test_refused_connack_is_not_a_connection(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, anonymous=False)
    broker.start()
    try:
        settings = ServiceSettings(mqtt_host=broker.host, mqtt_port=broker.port)
        bus = Bus(settings.mqtt_config(), "refused")
        bus.start()
        wait_for(lambda: bus.counters.get("connect_refused") >= 1, message="a refused CONNACK")
        assert not bus.connected
        bus.close(timeout=1)
    finally:
        broker.stop()


def test_a_raising_handler_does_not_stop_the_others(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    got: list[str] = []

    def bad(_m: Message) -> None:
        raise RuntimeError("boom")

    bus = make_bus(mosquitto)
    bus.subscribe("x/#", bad)
    bus.subscribe("x/#", lambda m: got.append(m.topic))
    mqtt_client().publish("x/1", b"1")
    wait_for(lambda: got == ["x/1"])
    assert bus.counters.get("handler_errors") == 1
    bus.close()


def test_deferred_ack_is_redelivered_to_a_persistent_session(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    first: list[Message] = []
    bus = make_bus(mosquitto, "acker", persistent=True)

    def keep_unacked(message: Message) -> None:
        message.defer_ack()
        first.append(message)

    bus.subscribe("q/#", keep_unacked)
    mqtt_client().publish("q/1", b"keep me")
    wait_for(lambda: len(first) == 1)
    bus.close()  # never acked: the broker must deliver it again

    again: list[Message] = []
    # A persistent consumer subscribes before it connects: the broker resends at once.
    bus2 = make_bus(mosquitto, "acker", subscribe={"q/#": again.append}, persistent=True)
    wait_for(lambda: [m.payload for m in again] == [b"keep me"], message="redelivery")
    bus2.close()


def test_publish_and_wait_is_false_while_offline(mosquitto: Mosquitto) -> None:
    bus = make_bus(mosquitto)
    assert bus.publish_and_wait("a/b", b"x", timeout=5)
    mosquitto.stop()
    wait_for(lambda: not bus.connected)
    assert not bus.publish_and_wait("a/b", b"x", timeout=0.5)
    bus.close(timeout=1)


def test_a_publish_made_offline_is_sent_after_reconnect_not_twice(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    bus = make_bus(mosquitto)
    mosquitto.stop()
    wait_for(lambda: not bus.connected)
    handle = bus.publish("late/1", b"queued", qos=1, retain=True)
    assert handle.queued
    assert not handle.wait(0.2)
    assert handle.poll() is None  # not answered yet, and poll never blocks
    mosquitto.start()
    probe = mqtt_client()
    probe.subscribe("late/#")
    assert handle.wait(40), "paho sends the queued message after reconnecting"
    assert handle.poll() is True
    (message,) = probe.wait_for("late/1")  # retained: no race with the probe's subscription
    assert message.payload == b"queued"
    bus.close()


def test_a_producer_can_wait_until_the_broker_has_acknowledged_its_publishes(mosquitto: Mosquitto) -> None:
    # paho queues QoS 1 publishes the broker has not acknowledged without limit: a producer
    # faster than the broker (the backend at import speed) waits here to keep memory bounded.
    bus = make_bus(mosquitto)
    assert bus.wait_unacknowledged(0, timeout=10)  # "online" went out at QoS 1
    mosquitto.pause()
    try:
        for n in range(100):
            bus.publish(f"q/{n}", b"x" * 1000, qos=1)
        assert bus.unacknowledged() == 100
        assert not bus.wait_unacknowledged(10, timeout=0.2)  # the broker acknowledges nothing now
    finally:
        mosquitto.resume()
    assert bus.wait_unacknowledged(10, timeout=20)
    assert bus.wait_unacknowledged(0, timeout=20)
    assert bus.unacknowledged() == 0
    bus.close()
    assert not bus.wait_unacknowledged(0, timeout=0.2)  # offline nothing drains: no wait


def test_receive_maximum_bounds_unacked_messages_in_flight(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]
) -> None:
    held: list[Message] = []

    def hold(message: Message) -> None:
        message.defer_ack()
        held.append(message)

    settings = ServiceSettings(
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_client_id="c-window", mqtt_receive_maximum=5
    )
    bus = Bus(settings.mqtt_config(), "window", persistent=True)
    bus.subscribe("w/#", hold)
    bus.start()
    assert bus.wait_connected(10)
    probe = mqtt_client()
    for n in range(20):
        probe.publish(f"w/{n}", b"x")
    wait_for(lambda: len(held) == 5)
    probe.publish("w/control", b"x", qos=0)  # a QoS 0 message is outside the window and arrives
    wait_for(lambda: any(m.topic == "w/control" for m in held))
    assert len([m for m in held if m.qos == 1]) == 5
    bus.close()


def test_online_means_listening(mosquitto: Mosquitto, mqtt_client: Callable[..., Probe]) -> None:
    """A message sent as soon as "online" shows reaches a service that just (re)connected."""
    got: list[bytes] = []
    watcher = mqtt_client()
    watcher.subscribe("dsmr/service/listener/state")
    settings = ServiceSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_client_id="c-listen")
    bus = Bus(settings.mqtt_config(), "listener")
    bus.subscribe("in/#", lambda m: got.append(m.payload))
    bus.start()  # no wait_connected: the retained "online" alone must mean the subscription is live
    watcher.wait_for("dsmr/service/listener/state", where=lambda m: m.payload == b"online")
    watcher.publish("in/1", b"first")
    wait_for(lambda: got == [b"first"])
    bus.close()


def test_only_the_network_thread_writes_and_publishes_keep_their_order(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], monkeypatch: pytest.MonkeyPatch
) -> None:
    # paho writes a publish on the caller's thread unless told otherwise, and its packet writer
    # has no lock: with our network thread writing too (queued publishes after each PUBACK,
    # acks), two threads could pop packets in one order and send them in the other.
    probe = mqtt_client()
    probe.subscribe("order/#")
    bus = make_bus(mosquitto, "order")
    writers: set[str] = set()
    send = bus._client._sock_send

    def recording_send(buf: bytes | bytearray) -> int:
        writers.add(threading.current_thread().name)
        return send(buf)

    monkeypatch.setattr(bus._client, "_sock_send", recording_send)
    count = 3000  # far beyond paho's 20 in flight: the network thread sends the queued ones
    handles = [bus.publish("order/x", str(n).encode(), qos=1) for n in range(count)]
    assert handles[-1].wait(30)
    received = probe.wait_for("order/x", count=count, timeout=30)
    assert [int(m.payload) for m in received] == list(range(count))
    assert writers == {"bus-order"}, f"written from {writers}"
    bus.close()
