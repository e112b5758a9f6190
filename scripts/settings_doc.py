"""Writes docs/configuration.md from the services' settings classes, so the list never drifts.

Run: python scripts/settings_doc.py   (tests/test_docs.py fails when the file is stale)
"""

from pathlib import Path

from pydantic import BaseModel

from dsmr_backend.settings import BackendSettings
from dsmr_datalogger.settings import DataloggerSettings
from dsmr_plugins.settings import PluginSettings
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_shared.cli import settings_rows
from dsmr_shared.settings import ServiceSettings

TARGET = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
SECTIONS: list[tuple[str, type[BaseModel], bool]] = [
    ("Every service (MQTT, topics, logging)", ServiceSettings, False),
    ("dsmr-datalogger", DataloggerSettings, True),
    ("dsmr-backend", BackendSettings, True),
    ("dsmr-pvoutput", PVOutputSettings, True),
    ("dsmr-plugins", PluginSettings, True),
]
INTRO = """# Configuration reference

Generated from the settings classes by `python scripts/settings_doc.py`; do not edit by hand.
Every service reads these from the environment or a `.env` file in its working directory; any
variable can be read from a file instead by setting `<VARIABLE>_FILE` to its path (Docker
secrets). A bad value stops the service with one line naming the variable. `dsmr-<service>
--help` prints the same list for one service.
"""


def cell(text: str) -> str:
    """Make text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole document."""
    parts = [INTRO]
    for title, settings_cls, only_own in SECTIONS:
        parts.append(f"\n## {title}\n\n| variable | default | meaning |\n|---|---|---|")
        for variable, default, description in settings_rows(settings_cls, only_own):
            parts.append(f"| `{variable}` | `{cell(default)}` | {cell(description)} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
