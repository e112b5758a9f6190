"""What every service's entry point needs: logging and a stop event (no pydantic: see the datalogger)."""

import logging
import signal
import threading
from types import FrameType

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
