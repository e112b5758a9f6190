"""The runner in this process on a real broker: routing to workers, connects made at run time."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dsmr_plugins.runner import PluginRunner
from dsmr_plugins.settings import PluginSettings
from dsmr_shared import signals
from dsmr_shared.bus import Bus
from dsmr_shared.envelope import Envelope
from dsmr_shared.topics import signal_topic
from tests.helpers import Mosquitto, Probe, wait_for
from tests.plugins.support import RAW_TELEGRAM, send, write_plugin

LATE_CONNECT = """
    import threading

    from dsmr_datalogger.signals import raw_telegram

    SEEN = []

    def later(sender, **kwargs):
        SEEN.append(("later", threading.current_thread().name))

    def first(sender, **kwargs):
        SEEN.append(("first", threading.current_thread().name))
        raw_telegram.connect(later)  # from inside a receiver, at run time; again each event

    raw_telegram.connect(first)
"""


@pytest.fixture
def start_runner(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Callable[..., PluginRunner]]:
    """Load plugins, then connect (as the service does), so their subscriptions come first."""
    settings = PluginSettings(
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, plugins_dir=tmp_path, plugins_queue_size=10
    )
    bus = Bus(settings.mqtt_config(), "plugins-in-process")
    signals.use_bus(bus)
    runner = PluginRunner(settings, bus.counters, bus.dispatch_paused)

    def start(*plugins: str) -> PluginRunner:
        runner.install()
        runner.load_all(plugins)
        bus.start()
        assert bus.wait_connected(10)
        return runner

    yield start
    bus.close()
    runner.stop(1.0)
    runner.uninstall()


def test_connects_made_by_a_receiver_run_on_the_plugins_worker(
    start_runner: Callable[..., PluginRunner], mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    write_plugin(tmp_path, "late_connect", LATE_CONNECT)
    runner = start_runner("dsmr_plugins.modules.late_connect")
    module = runner.plugins["dsmr_plugins.modules.late_connect"].module
    assert module is not None
    probe = mqtt_client()
    send(probe, RAW_TELEGRAM, "meter1", data="x")
    wait_for(lambda: len(module.SEEN) == 1)
    for _ in range(2):
        send(probe, RAW_TELEGRAM, "meter1", data="x")
    wait_for(lambda: len(module.SEEN) == 5)
    worker = "plugin-dsmr_plugins.modules.late_connect"
    first, later = ("first", worker), ("later", worker)
    assert [first, first, later, first, later] == module.SEEN
    assert len(runner.plugins["dsmr_plugins.modules.late_connect"].routes) == 2
    assert threading.current_thread().name != worker


FAST = """
    from dsmr_datalogger.signals import raw_telegram

    SEEN = []

    def keep(sender, **kwargs):
        SEEN.append(kwargs["seq"])

    raw_telegram.connect(keep)
"""

STUCK = """
    import threading

    from dsmr_datalogger.signals import raw_telegram

    RELEASE = threading.Event()

    def hang(sender, **kwargs):
        RELEASE.wait(30)

    raw_telegram.connect(hang)
"""


def test_a_burst_costs_a_quick_plugin_nothing_while_a_stuck_one_drops(
    start_runner: Callable[..., PluginRunner], mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    write_plugin(tmp_path, "fast", FAST)
    write_plugin(tmp_path, "stuck", STUCK)
    runner = start_runner("dsmr_plugins.modules.fast", "dsmr_plugins.modules.stuck")
    fast = runner.plugins["dsmr_plugins.modules.fast"].module
    stuck = runner.plugins["dsmr_plugins.modules.stuck"].module
    assert fast is not None and stuck is not None
    probe = mqtt_client()
    topic = signal_topic("dsmr", RAW_TELEGRAM, "meter1")
    burst = [Envelope.new(RAW_TELEGRAM, "meter1", {"data": "x", "seq": n}).to_json() for n in range(3000)]
    infos = [probe.client.publish(topic, payload, qos=1) for payload in burst]  # as fast as it goes
    infos[-1].wait_for_publish(30)
    wait_for(lambda: len(fast.SEEN) == 3000, timeout=60)
    assert list(range(3000)) == fast.SEEN  # queue of 10, yet nothing dropped, in order
    dropped = runner.counters.get("queue_overflow:dsmr_plugins.modules.stuck")
    assert dropped >= 3000 - 10 - 1
    assert runner.counters.get("queue_overflow:dsmr_plugins.modules.fast") == 0
    stuck.RELEASE.set()
