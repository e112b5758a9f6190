"""``dsmr-backend``: parse, store and publish readings (sub-commands; ``run`` is the default)."""

import argparse
import logging
import sys
from collections.abc import Callable

from dsmr_backend.settings import BackendSettings
from dsmr_shared.service import build_cli, setup_logging, stop_event
from dsmr_shared.settings import load_settings

DESCRIPTION = (
    "Turn raw_telegram signals into stored readings, DSMR-reader's MQTT topics and Home "
    "Assistant discovery. Without a command it runs the service."
)

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}
"""Sub-command name -> handler; other modules add theirs with ``register``."""


def run(_args: argparse.Namespace) -> int:
    """Run the service until SIGTERM/SIGINT."""
    from dsmr_backend.service import Backend  # noqa: PLC0415 - keep --help free of heavy imports

    settings = load_settings(BackendSettings, "backend")
    setup_logging(settings.log_level)
    stop = stop_event()
    return Backend(settings).run(stop)


def build_parser() -> argparse.ArgumentParser:
    """The CLI: global --help listing every setting, and one sub-parser per command."""
    parser = build_cli("dsmr-backend", DESCRIPTION, BackendSettings)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the backend service (the default)")
    COMMANDS["run"] = run
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dsmr-backend`` console script."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    command = COMMANDS[args.command or "run"]
    try:
        return command(args)
    except KeyboardInterrupt:
        return 130
    except Exception:
        logging.getLogger("dsmr_backend").exception("dsmr-backend failed")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
