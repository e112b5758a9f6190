"""``dsmr-plugins``: run DSMR-reader style plugins on signals that arrive over MQTT."""

import io
import logging
import signal
import sys
import threading
from types import FrameType

from pydantic import ValidationError

from dsmr_plugins.acks import AckAfterRunBus
from dsmr_plugins.runner import PluginRunner
from dsmr_plugins.settings import PluginSettings
from dsmr_shared.bus import Bus
from dsmr_shared.cli import build_cli
from dsmr_shared.counters import Counters
from dsmr_shared.errors import ConfigError
from dsmr_shared.service import setup_logging, stop_event
from dsmr_shared.settings import describe_error, load_settings
from dsmr_shared.signals import use_bus

SERVICE = "plugins"
log = logging.getLogger("dsmr_plugins")

DESCRIPTION = """\
Loads the plugins listed in DSMRREADER_PLUGINS and calls their receivers when a signal
arrives over MQTT. Each plugin runs on its own worker thread. Send SIGHUP to re-read the
plugin list (from DSMRREADER_PLUGINS_FILE or .env) and re-import changed plugin files.
See PLUGINS.md."""


def hangup_event() -> threading.Event:
    """Return an event that SIGHUP sets (call from the main thread)."""
    event = threading.Event()

    def _handler(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    signal.signal(signal.SIGHUP, _handler)
    return event


def reread_settings() -> PluginSettings | None:
    """Read the settings again for a reload; None (logged) when they are now invalid."""
    try:
        return PluginSettings()
    except ValidationError as exc:
        log.error("reload refused, keeping the running plugins: %s", describe_error(PluginSettings, exc))
    except ConfigError as exc:
        log.error("reload refused, keeping the running plugins: %s", exc)
    return None


def _announce_ready(bus: Bus) -> None:
    """After each connect, say when the broker has acknowledged our subscriptions (off-thread)."""

    def confirm() -> None:
        if bus.wait_connected(60):
            log.info("receiving signals (the broker acknowledged the subscriptions)")

    threading.Thread(target=confirm, name="plugins-ready", daemon=True).start()


def check(settings: PluginSettings) -> int:
    """Import every plugin without connecting to the broker; 1 when any was refused or failed."""
    counters = Counters()
    runner = PluginRunner(settings, counters)
    runner.install()
    runner.load_all(settings.plugins)
    runner.stop(0.0, summary=False)
    failed = counters.get("refused_plugins") + counters.get("import_failures")
    print(f"{len(runner.plugins)} plugin(s) fine, {failed} refused or failing")  # noqa: T201
    return 1 if failed else 0


def serve(settings: PluginSettings) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads."""
    stop, hangup = stop_event(), hangup_event()
    bus = AckAfterRunBus(settings.mqtt_config(), SERVICE, persistent=True)
    use_bus(bus)
    runner = PluginRunner(settings, bus.counters, bus.dispatch_paused, bus.hold_current)
    runner.install()
    runner.load_all(settings.plugins)
    bus.add_connect_listener(lambda: _announce_ready(bus))
    bus.start()
    try:
        while not stop.is_set():
            if hangup.wait(0.25):
                hangup.clear()
                log.info("SIGHUP: reloading plugins")
                fresh = reread_settings()
                if fresh is not None:
                    runner.reload(fresh.plugins, fresh.plugins_dir)
            runner.check_slow()
    finally:
        bus.ack_on_receipt()  # what is queued now runs below, after the connection is gone
        bus.close()  # no new deliveries; the broker keeps later ones for our persistent session
        runner.stop(settings.plugins_stop_timeout)
        runner.uninstall()
        use_bus(None)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the dsmr-plugins console script."""
    parser = build_cli("dsmr-plugins", DESCRIPTION, PluginSettings)
    parser.add_argument(
        "--check",
        action="store_true",
        help="import the plugins, report problems and exit (status 1 if any plugin is refused "
        "or fails to import); does not connect to the broker",
    )
    args = parser.parse_args(argv)
    # DSMR-reader plugins report with print(): one line at a time, even when stdout is a pipe.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    settings = load_settings(PluginSettings, SERVICE)
    setup_logging(settings.log_level)
    return check(settings) if args.check else serve(settings)


if __name__ == "__main__":
    sys.exit(main())
