"""How a meter is named on the bus: from its equipment id, the same way in every service."""

from dsmr_shared.topics import topic_safe

FALLBACK_METER = "meter"
"""The name of a meter whose telegrams carry no equipment id (some DSMR 2.2 and foreign meters)."""

MAX_METER_NAME = 128
"""Longest meter name: one topic level, and the backend's meters.name column."""


def decode_hex_text(raw: str) -> str:
    """Decode hex-encoded printable ASCII ("4530..." -> "E0..."); any other text is returned as is."""
    if not raw or len(raw) % 2 or not raw.isalnum():
        return raw
    try:
        text = bytes.fromhex(raw).decode("ascii")
    except ValueError:  # not hex, or not ASCII (UnicodeDecodeError is a ValueError)
        return raw
    return text if text.isprintable() else raw


def meter_name(equipment_id: str | None) -> str:
    """A topic-safe meter name from a decoded equipment id (``meter`` when there is none)."""
    return topic_safe(equipment_id or FALLBACK_METER)[:MAX_METER_NAME]
