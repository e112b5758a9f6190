"""DSMR-reader's plugin naming rule, with messages a newcomer can act on."""

import re

_VALID_PART = re.compile(r"[a-z_][a-z0-9_]*")

RULE = (
    "a plugin name uses lowercase letters, digits and underscores only "
    "(no capitals, spaces or dashes) and does not start with a digit"
)


def suggest_name(part: str) -> str:
    """Turn an invalid name into the nearest valid one (``My-Plugin`` -> ``my_plugin``)."""
    name = re.sub(r"[^a-z0-9_]+", "_", part.strip().lower()).strip("_") or "my_plugin"
    if name[0].isdigit():
        name = f"plugin_{name}"
    return name


def check_plugin_path(path: str) -> str | None:
    """Return why ``path`` breaks the naming rule, or None when every dotted part obeys it."""
    parts = path.split(".")
    if not all(parts):
        return (
            f"plugin {path!r} refused: a dotted path has no empty parts (two dots in a row, or a "
            "dot at either end); write it like 'dsmr_plugins.modules.my_plugin'."
        )
    for index, part in enumerate(parts):
        if _VALID_PART.fullmatch(part):
            continue
        better = suggest_name(part)
        fixed = ".".join([*parts[:index], better, *parts[index + 1 :]])
        advice = f"rename the file to {better}.py and " if index == len(parts) - 1 else ""
        return (
            f"plugin {path!r} refused: {part!r} breaks DSMR-reader's naming rule: {RULE}. "
            f"Fix: {advice}list it as {fixed!r}."
        )
    return None
