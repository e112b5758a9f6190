"""The runner as a real process on a real broker: naming, Django-style plugins, own signals, sessions."""

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.helpers import TELEGRAMS, Mosquitto, Probe, console_script
from tests.plugins.support import (
    BACKEND_CALLED,
    POST_SAVE,
    RAW_TELEGRAM,
    lines,
    recorder_plugin,
    runner_process,
    running,
    send,
    wait_lines,
    write_plugin,
)

DJANGO_STYLE = """
    import json

    from django.dispatch import receiver

    from dsmr_backend.signals import backend_called, post_save
    from dsmr_datalogger.signals import raw_telegram

    OUT = {out!r}

    def note(*fields):
        with open(OUT, "a") as f:
            f.write(json.dumps(fields) + "\\n")

    @receiver(raw_telegram)
    def on_telegram(sender, **kwargs):
        note("telegram", sender, kwargs["data"])

    @receiver(post_save, sender="DayStatistics")
    def on_day(sender, instance, created, **kwargs):
        note("day", sender, instance["day"], created)

    @receiver([backend_called, raw_telegram], sender="meter2")
    def on_either(signal, sender, **kwargs):
        note("either", signal.name, sender)
"""


def test_newcomer_names_are_refused_with_advice(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    write_plugin(modules, "good", recorder_plugin(tmp_path / "out.txt"))
    result = subprocess.run(
        [console_script("dsmr-plugins"), "--check"],
        env={
            "PATH": "/usr/bin:/bin",
            "DSMR_PLUGINS_DIR": str(modules),
            "DSMRREADER_PLUGINS": "My-Plugin,dsmr_plugins.modules.2fast,dsmr_plugins.modules.good",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "plugin 'My-Plugin' refused: 'My-Plugin' breaks DSMR-reader's naming rule" in output
    assert "lowercase letters, digits and underscores only" in output
    assert "does not start with a digit" in output
    assert "rename the file to my_plugin.py and list it as 'my_plugin'" in output
    assert "plugin 'dsmr_plugins.modules.2fast' refused" in output
    assert "list it as 'dsmr_plugins.modules.plugin_2fast'" in output
    assert "plugin dsmr_plugins.modules.good loaded" in output
    assert "1 plugin(s) fine, 2 refused or failing" in output


def test_refused_plugin_does_not_stop_the_others(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    write_plugin(modules, "good", recorder_plugin(tmp_path / "out.txt"))
    process = runner_process(
        mosquitto, modules, ["dsmr_plugins.modules.My-Plugin", "dsmr_plugins.modules.good"]
    )
    with running(process):
        send(mqtt_client(), RAW_TELEGRAM, "meter1", data="x", seq=7)
        assert wait_lines(tmp_path / "out.txt", 1) == ["7"]
        output = process.output()
    assert "plugin 'dsmr_plugins.modules.My-Plugin' refused" in output
    assert "'dsmr_plugins.modules.my_plugin'" in output


def test_django_style_receivers_work_unchanged(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    out = tmp_path / "django.jsonl"
    write_plugin(modules, "django_style", DJANGO_STYLE.format(out=str(out)))
    telegram = (TELEGRAMS / "iskra_ie.txt").read_bytes().decode("latin-1")
    assert "\r\n" in telegram
    with running(runner_process(mosquitto, modules, ["dsmr_plugins.modules.django_style"])):
        probe = mqtt_client()
        send(probe, RAW_TELEGRAM, "meter1", data=telegram)
        send(probe, POST_SAVE, "HourStatistics", instance={"hour_start": "x"}, created=True)
        send(probe, POST_SAVE, "DayStatistics", instance={"day": "2026-11-24"}, created=True)
        send(probe, BACKEND_CALLED, "meter2")
        send(probe, BACKEND_CALLED, "backend1")
        send(probe, RAW_TELEGRAM, "meter2", data="/short\r\n!")
        got = [json.loads(line) for line in wait_lines(out, 5)]
    assert got == [
        ["telegram", "meter1", telegram],
        ["day", "DayStatistics", "2026-11-24", True],
        ["either", BACKEND_CALLED, "meter2"],
        ["telegram", "meter2", "/short\r\n!"],
        ["either", RAW_TELEGRAM, "meter2"],
    ]


SENDS_OWN = """
    from dsmr_datalogger.signals import raw_telegram
    from dsmr_shared.signals import Signal

    doubled = Signal("my_plugin.signals.doubled")

    def double(sender, **kwargs):
        doubled.send(sender="doubler", value=kwargs["seq"] * 2)

    raw_telegram.connect(double)
"""


LISTENS = """
    from dsmr_shared.signals import Signal

    doubled = Signal("my_plugin.signals.doubled")  # the same name is the same topic

    def record(sender, value, **kwargs):
        with open({out!r}, "a") as f:
            f.write(f"{{value}}\\n")

    doubled.connect(record, sender="doubler")
"""


def test_plugins_send_and_receive_their_own_signals(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    write_plugin(modules, "doubler", SENDS_OWN)
    write_plugin(modules, "listener", LISTENS.format(out=str(tmp_path / "out.txt")))
    plugins = ["dsmr_plugins.modules.doubler", "dsmr_plugins.modules.listener"]
    with running(runner_process(mosquitto, modules, plugins)):
        probe = mqtt_client()
        probe.subscribe("dsmr/my_plugin/signals/doubled/+")
        for seq in range(5):
            send(probe, RAW_TELEGRAM, "meter1", data="x", seq=seq)
        assert wait_lines(tmp_path / "out.txt", 5) == ["0", "2", "4", "6", "8"]
        (first, *_) = probe.wait_for("dsmr/my_plugin/signals/doubled/doubler", count=5)
    assert json.loads(first.payload)["kwargs"] == {"value": 0}


def test_a_restarted_runner_gets_what_it_missed(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], tmp_path: Path
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    out = tmp_path / "out.txt"
    write_plugin(modules, "rec", recorder_plugin(out))
    process = runner_process(mosquitto, modules, ["dsmr_plugins.modules.rec"])
    probe = mqtt_client()
    with running(process):
        send(probe, RAW_TELEGRAM, "meter1", data="x", seq=0)
        wait_lines(out, 1)
        assert process.stop() == 0
    for seq in range(1, 21):  # while the runner is away
        send(probe, RAW_TELEGRAM, "meter1", data="x", seq=seq)
    assert lines(out) == ["0"]
    with running(runner_process(mosquitto, modules, ["dsmr_plugins.modules.rec"])):  # same id
        assert wait_lines(out, 21) == [str(seq) for seq in range(21)]


def test_help_lists_every_setting() -> None:
    result = subprocess.run(
        [console_script("dsmr-plugins"), "--help"], capture_output=True, text=True, check=True
    )
    for name in ("DSMRREADER_PLUGINS", "DSMR_PLUGINS_DIR", "DSMR_PLUGINS_QUEUE_SIZE", "--check"):
        assert name in result.stdout
