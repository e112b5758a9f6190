"""dsmr-datalogger: read a DSMR P1 port and publish every telegram as raw_telegram over MQTT."""

import sys

from dsmr_datalogger.app import SERVICE, Datalogger
from dsmr_datalogger.settings import DataloggerSettings
from dsmr_shared.service import build_cli, setup_logging, stop_event
from dsmr_shared.settings import load_settings

DESCRIPTION = """\
Read telegrams from a smart meter's P1 port (serial device, ser2net/network dongle URL,
capture file or the built-in simulator), check framing and CRC, and publish every good
telegram as the raw_telegram signal (QoS 1) on
<prefix>/dsmr_datalogger/signals/raw_telegram/<meter>. Telegrams wait in a disk spool while
the broker is away. Counters: retained JSON on <prefix>/service/datalogger/stats."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the dsmr-datalogger console script."""
    build_cli("dsmr-datalogger", DESCRIPTION, DataloggerSettings).parse_args(argv)
    settings = load_settings(DataloggerSettings, SERVICE)
    setup_logging(settings.log_level)
    return Datalogger(settings, stop_event()).run()


if __name__ == "__main__":
    sys.exit(main())
