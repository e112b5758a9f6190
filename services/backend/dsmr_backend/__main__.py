"""``dsmr-backend``: parse, store and publish readings (sub-commands; ``run`` is the default)."""

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from dsmr_backend.settings import BackendSettings
from dsmr_shared.cli import build_cli
from dsmr_shared.service import setup_logging, stop_event
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


def import_command(args: argparse.Namespace) -> int:
    """Import telegram captures into the store, then compute every statistic."""
    from dsmr_backend.importer import Importer, Progress, capture_files, compute_statistics  # noqa: PLC0415
    from dsmr_backend.storage.engine import make_engine  # noqa: PLC0415
    from dsmr_backend.storage.store import ReadingStore  # noqa: PLC0415

    settings = load_settings(BackendSettings, "backend")
    setup_logging(settings.log_level)
    paths = [Path(p) for p in args.paths]
    try:
        total = sum(p.stat().st_size for p in capture_files(paths))
    except FileNotFoundError as exc:
        print(f"dsmr-backend import: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    store = ReadingStore(make_engine(settings.database_url))
    store.migrate()
    importer = Importer(store, meter=args.meter, batch=args.batch)
    summary = importer.run(paths, Progress(total))
    if not args.no_statistics:
        summary.days = compute_statistics(store, settings.price_table())
    store.engine.dispose()
    print("\n".join(summary.lines()))  # noqa: T201
    return 0


def add_import_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """The ``import`` sub-command's arguments."""
    parser = commands.add_parser(
        "import",
        help="import telegram captures (files, folders, .gz) into the database, then compute statistics",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="a capture file (.gz too) or a folder of them"
    )
    parser.add_argument(
        "--meter", help="store every telegram under this meter name (default: its equipment id)"
    )
    parser.add_argument("--batch", type=int, default=5000, help="telegrams per transaction (default 5000)")
    parser.add_argument("--no-statistics", action="store_true", help="only store the readings")
    COMMANDS["import"] = import_command


def build_parser() -> argparse.ArgumentParser:
    """The CLI: global --help listing every setting, and one sub-parser per command."""
    parser = build_cli("dsmr-backend", DESCRIPTION, BackendSettings)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the backend service (the default)")
    COMMANDS["run"] = run
    add_import_parser(commands)
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
