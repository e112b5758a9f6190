"""The plugin runner's settings: which plugins to load, where user modules live, queue sizes."""

import ast
import json
import re
from pathlib import Path

from pydantic import Field, field_validator

from dsmr_shared.settings import ServiceSettings

_SEPARATORS = re.compile(r"[,\s]+")


def _from_python_settings(text: str) -> list[str]:
    """Read ``DSMRREADER_PLUGINS = [...]`` from a DSMR-reader settings.py without running it."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "DSMRREADER_PLUGINS" for t in node.targets
        ):
            return _as_strings(ast.literal_eval(node.value))
    raise ValueError("the file has no DSMRREADER_PLUGINS = [...] line")


def _as_strings(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of dotted paths (strings)")
    return [v.strip() for v in value if v.strip()]


def parse_plugin_list(text: str) -> list[str]:
    """Parse a plugin list: comma/line separated, a JSON list, or DSMR-reader's settings.py form."""
    text = text.strip()
    if not text:
        return []
    try:
        if "DSMRREADER_PLUGINS" in text:
            return _from_python_settings(text)
        if text.startswith("["):
            return _as_strings(json.loads(text))
    except (SyntaxError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the plugin list: {exc.msg}") from None
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [p.strip("'\"") for p in _SEPARATORS.split(" ".join(lines)) if p.strip("'\"")]


class PluginSettings(ServiceSettings):
    """Settings of ``dsmr-plugins``."""

    plugins: list[str] = Field(
        [],
        validation_alias="DSMRREADER_PLUGINS",
        title="Plugins",
        description="Dotted paths of the plugins to load, comma separated, e.g. "
        "dsmr_plugins.modules.pvoutput (DSMR-reader's name, no DSMR_ prefix). "
        "DSMRREADER_PLUGINS_FILE may name a file with one path per line, or a DSMR-reader "
        "settings.py with DSMRREADER_PLUGINS = [...]; it is read again on SIGHUP.",
    )
    plugins_dir: Path | None = Field(
        None,
        title="Modules folder",
        description="Folder of your own plugin modules; foo.py in it imports as dsmr_plugins.modules.foo.",
    )
    plugins_queue_size: int = Field(
        1000,
        ge=1,
        title="Queue size",
        description="Events each plugin may have waiting; beyond that new events for that plugin "
        "are dropped, counted and logged (other plugins are not affected).",
    )
    plugins_queue_sizes: dict[str, int] = Field(
        {},
        title="Queue size per plugin",
        description="Overrides of DSMR_PLUGINS_QUEUE_SIZE for single plugins, comma separated "
        "name=size pairs; a name is the dotted path or its last part, e.g. pvoutput=100.",
    )
    plugins_slow_warning: float = Field(
        10.0,
        gt=0,
        title="Slow receiver warning",
        description="Seconds after which a receiver still running is reported.",
    )
    plugins_stop_timeout: float = Field(
        10.0,
        ge=0,
        title="Stop timeout",
        description="Seconds to let plugins finish their queued events when stopping.",
    )

    @field_validator("plugins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return parse_plugin_list(value) if isinstance(value, str) else value

    @field_validator("plugins")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # the same plugin twice is imported once

    @field_validator("plugins_queue_sizes", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.count("=") == 1 for p in pairs):
            raise ValueError("write name=size pairs separated by commas, e.g. pvoutput=100")
        return dict(p.split("=") for p in pairs)

    @field_validator("plugins_queue_sizes")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [name for name, size in value.items() if size < 1]
        if bad:
            raise ValueError(f"a queue size must be at least 1 ({', '.join(bad)})")
        return {name.strip(): size for name, size in value.items()}

    def queue_size(self, plugin: str) -> int:
        """The queue size of ``plugin`` (dotted path): its override, else the common size."""
        sizes = self.plugins_queue_sizes
        short = plugin.rsplit(".", 1)[-1]
        return sizes.get(plugin) or sizes.get(short) or self.plugins_queue_size

    @field_validator("plugins_dir")
    @classmethod
    def _is_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"folder {value} does not exist")
        return value
