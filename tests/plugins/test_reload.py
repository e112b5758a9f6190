"""SIGHUP: changed plugins are re-imported, the list is re-read, and no event is lost or doubled."""

import signal
from collections.abc import Callable
from pathlib import Path

from tests.helpers import Mosquitto, Probe, ServiceProcess
from tests.plugins.support import (
    RAW_TELEGRAM,
    recorder_plugin,
    runner_process,
    running,
    send,
    wait_lines,
    write_plugin,
)


def hangup(process: ServiceProcess) -> None:
    """Send SIGHUP to the runner."""
    assert process.process is not None
    process.process.send_signal(signal.SIGHUP)


def test_changed_plugin_takes_over_without_losing_an_event(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules, out = tmp_path / "modules", tmp_path / "out.txt"
    modules.mkdir()
    write_plugin(modules, "live", recorder_plugin(out, tag="v1 "))
    process = runner_process(mosquitto, modules, ["dsmr_plugins.modules.live"])
    with running(process):
        probe = mqtt_client()
        seq = 0
        for seq in range(50):
            send(probe, RAW_TELEGRAM, "meter1", data="x", seq=seq)
        wait_lines(out, 50)
        write_plugin(modules, "live", recorder_plugin(out, tag="v2 "))  # same size, same second
        hangup(process)
        # Keep events flowing while the runner swaps the code.
        while "plugin dsmr_plugins.modules.live re-imported" not in process.output():
            seq += 1
            send(probe, RAW_TELEGRAM, "meter1", data="x", seq=seq)
            assert seq < 20000, process.output()
        total = seq + 51
        for n in range(seq + 1, total):
            send(probe, RAW_TELEGRAM, "meter1", data="x", seq=n)
        got = [line.split() for line in wait_lines(out, total)]
    assert [int(n) for _v, n in got] == list(range(total))  # each once, in order
    versions = [v for v, _n in got]
    switch = versions.index("v2")
    assert switch >= 50
    assert set(versions[:switch]) == {"v1"} and set(versions[switch:]) == {"v2"}
    assert "delivery could not be held" not in process.output()


def test_reload_rereads_the_list_and_keeps_a_plugin_that_breaks(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    write_plugin(modules, "rec_a", recorder_plugin(a))
    write_plugin(modules, "rec_b", recorder_plugin(b))
    plugin_list = tmp_path / "plugins.txt"
    plugin_list.write_text("dsmr_plugins.modules.rec_a\n")
    process = runner_process(
        mosquitto, modules, [], DSMRREADER_PLUGINS="", DSMRREADER_PLUGINS_FILE=str(plugin_list)
    )
    process.env.pop("DSMRREADER_PLUGINS")
    with running(process):
        probe = mqtt_client()
        send(probe, RAW_TELEGRAM, "m", data="x", seq=1)
        assert wait_lines(a, 1) == ["1"]

        plugin_list.write_text("DSMRREADER_PLUGINS = [\n    'dsmr_plugins.modules.rec_b',\n]\n")
        hangup(process)
        process.wait_for_output("0 re-imported, 1 removed; 1 plugin(s) running")
        send(probe, RAW_TELEGRAM, "m", data="x", seq=2)
        assert wait_lines(b, 1) == ["2"]

        (modules / "rec_b.py").write_text("def broken(:\n")
        hangup(process)
        process.wait_for_output("the previous version keeps running")
        send(probe, RAW_TELEGRAM, "m", data="x", seq=3)
        assert wait_lines(b, 2) == ["2", "3"]

        plugin_list.write_text("dsmr_plugins.modules.rec_a, dsmr_plugins.modules.rec_b\n")
        hangup(process)  # back on the list: rec_a is imported (run) again
        process.wait_for_output("0 re-imported, 0 removed; 2 plugin(s) running")
        send(probe, RAW_TELEGRAM, "m", data="x", seq=4)
        assert wait_lines(a, 2) == ["1", "4"]
        assert wait_lines(b, 3) == ["2", "3", "4"]
    assert "SyntaxError" in process.output()
