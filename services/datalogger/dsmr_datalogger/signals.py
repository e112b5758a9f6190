"""The datalogger's signals; importing this module is cheap (no MQTT connection)."""

from dsmr_shared.signals import Signal
from dsmr_shared.topics import RAW_TELEGRAM

raw_telegram = Signal(RAW_TELEGRAM)
"""Sent for every telegram that passed framing and CRC; kwargs: ``data`` (str, CRLF kept)."""
