"""What every service's entry point needs: logging, a stop event, and a --help that lists settings."""

import argparse
import logging
import signal
import threading
from types import FrameType

from pydantic_settings import BaseSettings

from dsmr_shared.settings import env_name

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    """Log to stderr at ``level``; paho's own chatter stays at WARNING."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    logging.getLogger("paho").setLevel(logging.WARNING)


def stop_event() -> threading.Event:
    """Return an event that SIGTERM and SIGINT set (call from the main thread)."""
    event = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("dsmr_shared.service").info("%s received, stopping", signal.Signals(signum).name)
        event.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return event


def settings_help(settings_cls: type[BaseSettings]) -> str:
    """List every variable of a settings class with its default and description."""
    lines = ["settings (environment variables; a .env file in the working directory also works):"]
    for variable, default, description in settings_rows(settings_cls):
        lines.append(f"  {variable} (default: {default})" if default != "required" else f"  {variable}")
        if description:
            lines.append(f"      {description}")
    lines.append("Any variable can be read from a file instead: set <VARIABLE>_FILE to its path.")
    return "\n".join(lines)


def settings_rows(settings_cls: type[BaseSettings], only_own: bool = False) -> list[tuple[str, str, str]]:
    """(variable, default, description) for each field; ``only_own`` skips inherited ones."""
    inherited = set().union(*(getattr(b, "model_fields", {}) for b in settings_cls.__bases__))
    rows = []
    for name, field in settings_cls.model_fields.items():
        if only_own and name in inherited:
            continue
        value = None if field.is_required() else field.get_default()
        default = "required" if field.is_required() else "unset" if value is None else str(value)
        rows.append((env_name(settings_cls, name), default, field.description or ""))
    return rows


def build_cli(prog: str, description: str, settings_cls: type[BaseSettings]) -> argparse.ArgumentParser:
    """Return an argument parser whose --help explains every setting."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=settings_help(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
