"""The command line of every service: a --help that explains each setting."""

import argparse

from pydantic import BaseModel

from dsmr_shared.settings import env_name


def settings_help(settings_cls: type[BaseModel]) -> str:
    """List every variable of a settings class with its default and description."""
    lines = ["settings (environment variables; a .env file in the working directory also works):"]
    for variable, default, description in settings_rows(settings_cls):
        lines.append(f"  {variable} (default: {default})" if default != "required" else f"  {variable}")
        if description:
            lines.append(f"      {description}")
    lines.append("Any variable can be read from a file instead: set <VARIABLE>_FILE to its path.")
    return "\n".join(lines)


def settings_rows(settings_cls: type[BaseModel], only_own: bool = False) -> list[tuple[str, str, str]]:
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


def build_cli(prog: str, description: str, settings_cls: type[BaseModel]) -> argparse.ArgumentParser:
    """Return an argument parser whose --help explains every setting."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=settings_help(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
