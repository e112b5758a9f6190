"""Importing plugin modules: name check, first import, fresh re-import, change detection."""

import contextlib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import dsmr_plugins.modules

IMPORT_ERRORS = (Exception, SystemExit)
"""What a plugin's import may raise without taking the runner down (a stray sys.exit too)."""


def source_digest(module: ModuleType | None) -> str | None:
    """SHA-256 of the module's source file, or None when it has none or it cannot be read."""
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    try:
        return hashlib.sha256(Path(filename).read_bytes()).hexdigest()
    except OSError:
        return None


def import_plugin(path: str, *, fresh: bool) -> ModuleType:
    """Import ``path``; ``fresh`` runs it again even when imported before (kept if that fails)."""
    if not fresh:
        return importlib.import_module(path)
    importlib.invalidate_caches()
    previous = sys.modules.pop(path, None)
    _forget_bytecode(previous)
    try:
        return importlib.import_module(path)
    except IMPORT_ERRORS:
        if previous is not None:
            sys.modules[path] = previous
        raise


def _forget_bytecode(module: ModuleType | None) -> None:
    # A .pyc is trusted when the source's mtime (whole seconds) and size match: an edit made
    # within the same second that keeps the size would otherwise run the old code.
    filename = getattr(module, "__file__", None)
    if not filename or not filename.endswith(".py"):
        return
    with contextlib.suppress(OSError, ValueError):
        Path(importlib.util.cache_from_source(filename)).unlink(missing_ok=True)


def not_found_hint(path: str, exc: BaseException) -> str:
    """A hint when the plugin module itself (not something it imports) does not exist."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not missing or not (path == missing or path.startswith(f"{missing}.")):
        return ""
    folders = ", ".join(dsmr_plugins.modules.__path__)
    return (
        f" No module {missing!r}: for a file foo.py in your modules folder, list "
        f"'dsmr_plugins.modules.foo' and set DSMR_PLUGINS_DIR to that folder "
        f"(dsmr_plugins.modules is searched in: {folders})."
    )
