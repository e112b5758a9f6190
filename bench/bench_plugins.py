"""Plugin runner throughput: signal envelopes over MQTT to a plugin's receiver, events per second.

Ours: the runner's whole path in this process (Bus, Signal envelope validation and dedup, the
plugin's bounded queue and worker thread) to a receiver loaded as a real plugin module.
Reference: the cheapest way to hear the same messages, a bare paho client that json-decodes
each payload and calls the same receiver inline on its network thread, as DSMR-reader calls its
receivers inline (Django itself is not installed here, so its dispatcher cannot be timed).
Both hear the same N QoS 1 messages from the same publisher on a private mosquitto.

    .venv/bin/python bench/bench_plugins.py              # 20,000 events, best of 3 rounds
    .venv/bin/python bench/bench_plugins.py --events 5000 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import start_broker
from dsmr_plugins.runner import PluginRunner
from dsmr_plugins.settings import PluginSettings
from dsmr_shared.bus import Bus
from dsmr_shared.envelope import Envelope
from dsmr_shared.signals import use_bus
from dsmr_shared.topics import signal_topic

SIGNAL = "dsmr_datalogger.signals.raw_telegram"
TELEGRAM = (Path(__file__).resolve().parents[2] / "shared/telegrams/real/iskra_ie.txt").read_bytes()

PLUGIN = """
import threading

from dsmr_datalogger.signals import raw_telegram

DONE = threading.Event()
TARGET = [0]
SEEN = [0]


def count(sender, **kwargs):
    SEEN[0] += len(kwargs["data"]) > 0
    if SEEN[0] >= TARGET[0]:
        DONE.set()


raw_telegram.connect(count)
"""


def payloads(count: int) -> list[bytes]:
    """``count`` distinct envelopes carrying a real telegram."""
    data = TELEGRAM.decode("latin-1")
    return [Envelope.new(SIGNAL, "meter1", {"data": data}).to_json() for _ in range(count)]


def publish_all(port: int, messages: list[bytes]) -> None:
    """Publish every message at QoS 1 and wait until the broker acknowledged the last one."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    topic = signal_topic("dsmr", SIGNAL, "meter1")
    infos = [client.publish(topic, m, qos=1) for m in messages]
    infos[-1].wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def timed(port: int, messages: list[bytes], done: threading.Event) -> float:
    """Seconds from the first publish until the receiver saw the last message."""
    start = time.perf_counter()
    publish_all(port, messages)
    if not done.wait(300):
        raise SystemExit("the receiver did not see every message")
    return time.perf_counter() - start


def run_ours(port: int, messages: list[bytes], modules: Path) -> float:
    """The plugin runner's path, in this process."""
    settings = PluginSettings(mqtt_port=port, mqtt_client_id="bench-ours", plugins_dir=modules)
    bus = Bus(settings.mqtt_config(), "bench-plugins")
    use_bus(bus)
    runner = PluginRunner(settings, bus.counters, bus.dispatch_paused)
    runner.install()
    sys.modules.pop("dsmr_plugins.modules.bench_counter", None)  # a fresh runner each round
    runner.load_all(["dsmr_plugins.modules.bench_counter"])
    module = runner.plugins["dsmr_plugins.modules.bench_counter"].module
    module.TARGET[0], module.SEEN[0] = len(messages), 0  # type: ignore[union-attr]
    module.DONE.clear()  # type: ignore[union-attr]
    bus.start()
    assert bus.wait_connected(10)
    try:
        return timed(port, messages, module.DONE)  # type: ignore[union-attr]
    finally:
        bus.close()
        runner.stop(5, summary=False)
        runner.uninstall()
        use_bus(None)


def run_reference(port: int, messages: list[bytes], receiver: Callable[..., None]) -> float:
    """A bare paho client calling the same receiver inline."""
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-reference")

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        receiver(signal=None, sender=body["sender"], **body["kwargs"])

    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(signal_topic("dsmr", SIGNAL, None), qos=1)
    client.loop_start()
    assert subscribed.wait(10)
    try:
        return timed(port, messages, receiver.__globals__["DONE"])
    finally:
        client.disconnect()
        client.loop_stop()


def reference_receiver(modules: Path, target: int) -> Callable[..., None]:
    """The same receiver function, from a separate copy of the plugin's source."""
    namespace: dict[str, object] = {"__name__": "reference_counter"}
    exec(compile((modules / "bench_counter.py").read_text(), "bench_counter", "exec"), namespace)
    namespace["TARGET"][0] = target  # type: ignore[index]
    return namespace["count"]  # type: ignore[return-value]


def main() -> None:
    """Run alternating rounds and print events/s of both and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        modules = workdir / "modules"
        modules.mkdir()
        (modules / "bench_counter.py").write_text(PLUGIN)
        broker, port = start_broker(workdir)
        try:
            messages = payloads(args.events)
            ours, ref = [], []
            for _ in range(args.rounds):
                ref.append(run_reference(port, messages, reference_receiver(modules, len(messages))))
                ours.append(run_ours(port, messages, modules))
        finally:
            broker.terminate()
            broker.wait(10)
    best_ours, best_ref = args.events / min(ours), args.events / min(ref)
    print(f"events: {args.events} x {len(TELEGRAM)} B telegram, best of {args.rounds} rounds")
    print(f"dsmr-plugins runner (ours): {best_ours:10,.0f} events/s")
    print(f"bare paho, inline call    : {best_ref:10,.0f} events/s")
    print(f"ratio ours/reference      : {best_ours / best_ref:10.2f}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)")


if __name__ == "__main__":
    main()
