"""Unit tests: naming rule, settings parsing, the django stand-in, workers, the modules folder."""

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import dsmr_plugins.modules
from dsmr_plugins import django_compat
from dsmr_plugins.modules import add_modules_dir
from dsmr_plugins.naming import check_plugin_path, suggest_name
from dsmr_plugins.settings import PluginSettings, parse_plugin_list
from dsmr_plugins.worker import Job, PluginWorker
from dsmr_shared.counters import Counters
from dsmr_shared.signals import Signal
from tests.helpers import wait_for

# -- naming ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["dsmr_plugins.modules.pvoutput", "my_plugin", "dsmr_plugins.modules.plugin_2"]
)
def test_valid_names_pass(path: str) -> None:
    assert check_plugin_path(path) is None


@pytest.mark.parametrize(
    ("path", "advice"),
    [
        ("My-Plugin", "rename the file to my_plugin.py and list it as 'my_plugin'"),
        ("dsmr_plugins.modules.2fast", "list it as 'dsmr_plugins.modules.plugin_2fast'"),
        ("dsmr_plugins.modules.my plugin", "list it as 'dsmr_plugins.modules.my_plugin'"),
        ("Dsmr_plugins.modules.x", "list it as 'dsmr_plugins.modules.x'"),
    ],
)
def test_invalid_names_get_the_rule_and_a_fix(path: str, advice: str) -> None:
    message = check_plugin_path(path)
    assert message is not None
    assert f"plugin {path!r} refused" in message
    assert "lowercase letters, digits and underscores only" in message
    assert "does not start with a digit" in message
    assert advice in message


def test_empty_parts_are_explained() -> None:
    message = check_plugin_path("dsmr_plugins..x")
    assert message is not None and "empty part" in message


def test_suggestions_are_themselves_valid() -> None:
    for name in ("My-Plugin", "2fast", "--", "Ä-thing", "UPPER CASE"):
        assert check_plugin_path(suggest_name(name)) is None


# -- settings -------------------------------------------------------------------------------------


def test_plugin_list_forms() -> None:
    assert parse_plugin_list("a.b, c.d") == ["a.b", "c.d"]
    assert parse_plugin_list("a.b\n# a comment\nc.d  # trailing\n") == ["a.b", "c.d"]
    assert parse_plugin_list('["a.b", "c.d"]') == ["a.b", "c.d"]
    assert parse_plugin_list("DSMRREADER_PLUGINS = [\n    'a.b',\n    \"c.d\",\n]\n") == [
        "a.b",
        "c.d",
    ]
    assert parse_plugin_list("  ") == []


def test_settings_python_file_is_read_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"open({str(marker)!r}, 'w')\nDSMRREADER_PLUGINS = ['a.b']\n"
    assert parse_plugin_list(text) == ["a.b"]
    assert not marker.exists()


def test_settings_from_environment_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    listing = tmp_path / "plugins.py"
    listing.write_text("DSMRREADER_PLUGINS = ['dsmr_plugins.modules.x', 'dsmr_plugins.modules.x']")
    monkeypatch.setenv("DSMRREADER_PLUGINS_FILE", str(listing))
    monkeypatch.setenv("DSMR_PLUGINS_QUEUE_SIZES", "x=5, dsmr_plugins.modules.y=7")
    settings = PluginSettings()
    assert settings.plugins == ["dsmr_plugins.modules.x"]  # listed twice, imported once
    assert settings.queue_size("dsmr_plugins.modules.x") == 5
    assert settings.queue_size("dsmr_plugins.modules.y") == 7
    assert settings.queue_size("dsmr_plugins.modules.z") == 1000
    monkeypatch.setenv("DSMRREADER_PLUGINS", "a.b")  # a plain variable wins over the file
    assert PluginSettings().plugins == ["a.b"]


def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dsmr_shared.settings import load_settings  # noqa: PLC0415

    monkeypatch.setenv("DSMR_PLUGINS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as exit_info:
        load_settings(PluginSettings, "plugins")
    assert exit_info.value.code == 2
    assert "DSMR_PLUGINS_DIR: folder" in capsys.readouterr().err


# -- django stand-in ------------------------------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[None]:
    assert django_compat.install()
    yield
    django_compat.uninstall()


def test_receiver_decorator_connects_like_django(stand_in: None) -> None:
    from django.dispatch import Signal as DjangoSignal  # type: ignore[import-not-found]  # noqa: PLC0415
    from django.dispatch import receiver as django_receiver  # noqa: PLC0415

    assert DjangoSignal is Signal
    one, two = Signal("t.signals.one"), Signal("t.signals.two")

    @django_compat.receiver(one)
    def plain(**kwargs: object) -> None: ...

    @django_compat.receiver(one, sender="meter1")
    def filtered(**kwargs: object) -> None: ...

    @django_compat.receiver([one, two])
    def both(**kwargs: object) -> None: ...

    assert django_receiver is django_compat.receiver  # after the uses: mypy narrows on "is"
    assert one.disconnect(plain) and one.disconnect(filtered, sender="meter1")
    assert one.disconnect(both) and two.disconnect(both)
    assert not one.has_listeners("meter1")


def test_other_django_modules_explain_the_alternative(stand_in: None) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"dsmr_backend\.signals"):
        importlib.import_module("django.db.models.signals")


def test_real_django_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "django"
    fake.mkdir()
    (fake / "__init__.py").write_text("REAL = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert not django_compat.install()
        import django  # type: ignore[import-not-found]  # noqa: PLC0415

        assert django.REAL
    finally:
        sys.modules.pop("django", None)
        django_compat.uninstall()


# -- workers --------------------------------------------------------------------------------------


def test_worker_keeps_order_isolates_errors_and_counts_overflow() -> None:
    counters = Counters()
    seen: list[int] = []
    gate = threading.Event()

    def record(n: int) -> None:
        gate.wait(10)
        if n == 3:
            raise ValueError("three")
        seen.append(n)

    worker = PluginWorker("p", queue_size=5, counters=counters)
    worker.start()
    submitted = [worker.submit(Job(record, "record", {"n": n})) for n in range(10)]
    wait_for(lambda: counters.get("queue_overflow:p") >= 1)
    gate.set()
    assert worker.stop(10) == 0
    accepted = [n for n, ok in zip(range(10), submitted, strict=True) if ok]
    assert seen == [n for n in accepted if n != 3]
    assert counters.get("receiver_errors:p") == 1
    assert counters.get("queue_overflow:p") == 10 - len(accepted)
    assert counters.get("handled:p") == len(seen)


def test_stuck_worker_reports_what_is_left() -> None:
    release = threading.Event()
    worker = PluginWorker("slow", queue_size=10, counters=Counters())
    worker.start()
    for _ in range(3):
        worker.submit(Job(lambda: release.wait(10), "wait", {}))
    wait_for(lambda: worker.slow_receiver(0.0) is not None)
    assert worker.stop(0.05) == 3  # one running, two waiting
    release.set()


# -- modules folder -------------------------------------------------------------------------------


def test_user_folder_is_importable_as_dsmr_plugins_modules(tmp_path: Path) -> None:
    (tmp_path / "user_thing.py").write_text("VALUE = 42\n")
    before = list(dsmr_plugins.modules.__path__)
    try:
        assert add_modules_dir(tmp_path)
        assert not add_modules_dir(tmp_path)
        module = importlib.import_module("dsmr_plugins.modules.user_thing")
        assert module.VALUE == 42
    finally:
        dsmr_plugins.modules.__path__[:] = before
        sys.modules.pop("dsmr_plugins.modules.user_thing", None)
