"""Done when: in 1,000 events, a raising, a sleeping and a broken plugin cost the others nothing."""

import re
import signal
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Mosquitto, Probe
from tests.plugins.support import (
    RAW_TELEGRAM,
    recorder_plugin,
    runner_process,
    running,
    send,
    wait_lines,
    write_plugin,
)

EVENTS = 1000
QUEUE = 50

RAISES = """
    from dsmr_datalogger.signals import raw_telegram

    def explode(sender, **kwargs):
        raise ValueError(f"plugin_a cannot handle event {kwargs['seq']}")

    raw_telegram.connect(explode)
"""

SLEEPS = """
    import time

    from dsmr_datalogger.signals import raw_telegram

    def dawdle(sender, **kwargs):
        time.sleep(30)  # really blocks its worker; the runner abandons it at stop

    raw_telegram.connect(dawdle)
"""

BROKEN = """
    import no_such_dependency_for_plugin_c

    from dsmr_datalogger.signals import raw_telegram
"""


def summary(output: str, plugin: str) -> dict[str, int]:
    """The runner's stop summary of one plugin, as numbers."""
    line = re.search(rf"plugin dsmr_plugins\.modules\.{plugin}: (\d+) event.*", output)
    assert line, f"no summary for {plugin}:\n{output}"
    numbers = [int(n) for n in re.findall(r"(\d+) ", line.group(0).split(": ", 1)[1])]
    keys = ("received", "handled", "errors", "dropped", "undone")
    return dict(zip(keys, numbers, strict=True))


def test_thousand_events_reach_healthy_plugins_in_order(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    write_plugin(modules, "plugin_a", RAISES)
    write_plugin(modules, "plugin_b", SLEEPS)
    write_plugin(modules, "plugin_c", BROKEN)
    write_plugin(modules, "plugin_d", recorder_plugin(tmp_path / "d.txt"))
    write_plugin(modules, "plugin_e", recorder_plugin(tmp_path / "e.txt"))
    names = [f"dsmr_plugins.modules.plugin_{x}" for x in "abcde"]
    process = runner_process(
        mosquitto,
        modules,
        names,
        DSMR_PLUGINS_QUEUE_SIZES=f"plugin_b={QUEUE}",  # the others keep the default, 1000
        DSMR_PLUGINS_SLOW_WARNING="1",
    )
    with running(process):
        probe = mqtt_client()
        for seq in range(EVENTS):
            send(probe, RAW_TELEGRAM, "meter1", data="/telegram\r\n!", seq=seq)
        expected = [str(seq) for seq in range(EVENTS)]
        assert wait_lines(tmp_path / "d.txt", EVENTS) == expected
        assert wait_lines(tmp_path / "e.txt", EVENTS) == expected
        process.wait_for_output("dsmr_plugins.modules.plugin_b.dawdle has been running for")
        assert process.stop(signal.SIGTERM) == 0
        output = process.output()

    # C: reported once, with its traceback, and skipped.
    assert output.count("plugin dsmr_plugins.modules.plugin_c could not be imported") == 1
    assert "Traceback" in output and "no_such_dependency_for_plugin_c" in output
    assert "4 plugin(s) running" in output
    # A: every exception counted, named by plugin and receiver.
    assert (
        "plugin dsmr_plugins.modules.plugin_a: receiver dsmr_plugins.modules.plugin_a.explode "
        "raised (error 1 of this receiver;" in output
    )
    assert "raised (error 2 of this receiver" not in output  # throttled: counted, not repeated
    assert "ValueError: plugin_a cannot handle event 0" in output
    a = summary(output, "plugin_a")
    assert a == {"received": EVENTS, "handled": 0, "errors": EVENTS, "dropped": 0, "undone": 0}
    # B: its queue overflowed; that is counted and logged, and it was still stuck at stop.
    assert "plugin dsmr_plugins.modules.plugin_b: queue full" in output
    b = summary(output, "plugin_b")
    assert b["received"] + b["dropped"] == EVENTS
    assert b["dropped"] >= EVENTS - QUEUE - 2
    assert b["undone"] >= 1
    # D and E: everything, nothing dropped.
    for healthy in ("plugin_d", "plugin_e"):
        assert summary(output, healthy) == {
            "received": EVENTS,
            "handled": EVENTS,
            "errors": 0,
            "dropped": 0,
            "undone": 0,
        }
