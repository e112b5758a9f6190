"""The datalogger's signals; importing this module is cheap (no MQTT connection)."""

from dsmr_shared.signals import Signal

raw_telegram = Signal("dsmr_datalogger.signals.raw_telegram")
"""Sent for every telegram that passed framing and CRC; kwargs: ``data`` (str, CRLF kept)."""
