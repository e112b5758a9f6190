"""dsmr-datalogger: read a DSMR P1 port and publish every telegram as raw_telegram over MQTT.

This module and everything the running datalogger imports stay free of pydantic: the settings
are validated in a short-lived child process (``value_from_child``), which hands back a plain
``DataloggerConfig``. A test checks that pydantic never loads here.
"""

import sys

from dsmr_datalogger.app import SERVICE, Datalogger
from dsmr_datalogger.config import DataloggerConfig
from dsmr_shared.child import value_from_child
from dsmr_shared.service import setup_logging, stop_event

DESCRIPTION = """\
Read telegrams from a smart meter's P1 port (serial device, ser2net/network dongle URL,
capture file or the built-in simulator), check framing and CRC, and publish every good
telegram as the raw_telegram signal (QoS 1) on
<prefix>/dsmr_datalogger/signals/raw_telegram/<meter>. Telegrams wait in a disk spool while
the broker is away. Counters: retained JSON on <prefix>/service/datalogger/stats."""


def validated_config(argv: list[str] | None) -> DataloggerConfig:
    """Parse the command line and the settings; runs in the child, where pydantic may load."""
    # Imported here, not at the top, so that they load in the child only.
    from dsmr_datalogger.settings import DataloggerSettings  # noqa: PLC0415
    from dsmr_shared.cli import build_cli  # noqa: PLC0415
    from dsmr_shared.settings import load_settings  # noqa: PLC0415

    build_cli("dsmr-datalogger", DESCRIPTION, DataloggerSettings).parse_args(argv)
    return load_settings(DataloggerSettings, SERVICE).config()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the dsmr-datalogger console script."""
    config = value_from_child(lambda: validated_config(argv))
    setup_logging(config.log_level)
    return Datalogger(config, stop_event()).run()


if __name__ == "__main__":
    sys.exit(main())
