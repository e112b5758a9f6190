"""``dsmr-pvoutput``: upload this home's consumption to PVOutput without losing an interval."""

import logging

from dsmr_pvoutput.service import PVOutputService
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_shared.cli import build_cli
from dsmr_shared.service import setup_logging, stop_event
from dsmr_shared.settings import load_settings

log = logging.getLogger("dsmr_pvoutput")


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM or SIGINT."""
    build_cli(
        "dsmr-pvoutput",
        "Upload consumption (v3, v4 net) from the backend's MQTT outputs to PVOutput, "
        "with a persistent outbox and backfill through addbatchstatus.",
        PVOutputSettings,
    ).parse_args(argv)
    settings = load_settings(PVOutputSettings, "pvoutput")
    setup_logging(settings.log_level)
    stop = stop_event()
    service = PVOutputService(settings)
    service.start()
    try:
        stop.wait()
    finally:
        service.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
