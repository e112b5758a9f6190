"""The docs that are generated from code stay in step with it."""

import importlib.util
from pathlib import Path

from tests.helpers import REPO


def load_settings_doc():
    spec = importlib.util.spec_from_file_location("settings_doc", REPO / "scripts" / "settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_up_to_date() -> None:
    doc = load_settings_doc()
    current = Path(doc.TARGET).read_text(encoding="utf-8")
    assert current == doc.render(), "docs/configuration.md is stale: run python scripts/settings_doc.py"


def test_configuration_reference_names_every_variable() -> None:
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for variable in (
        "DSMR_MQTT_PASSWORD",
        "DSMR_DATALOGGER_PORT",
        "DSMR_BACKEND_DATABASE_URL",
        "DSMRREADER_PLUGINS",
    ):
        assert f"`{variable}`" in text
