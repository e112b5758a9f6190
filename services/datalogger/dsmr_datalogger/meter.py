"""The meter's name (raw_telegram's sender), taken from its equipment id when not configured."""

import re
import string

from dsmr_shared.topics import topic_safe

FALLBACK_NAME = "meter"
"""Sender for telegrams that carry no equipment id (some DSMR 2.2 and foreign meters)."""

# 0-0:96.1.1 (DSMR 4/5), 0-0:96.1.0 (Belgium, some DSMR 2.2/3), 0-0:96.1.255*255 (Germany).
_EQUIPMENT_ID = re.compile(rb"^0-0:96\.1\.(?:1|0|255)(?:\*255)?\(([^)\r\n]*)\)", re.MULTILINE)
_HEX = frozenset(string.hexdigits)
_PRINTABLE = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")


def decode_equipment_id(raw: str) -> str:
    """Return the id as text: DSMR writes it as hex-encoded ASCII, some meters as plain text."""
    if len(raw) % 2 or not raw or not set(raw) <= _HEX:
        return raw
    decoded = bytes.fromhex(raw).decode("latin-1")
    return decoded if set(decoded) <= _PRINTABLE else raw


def meter_name(telegram: bytes) -> str:
    """Return a topic-safe name for the meter that sent ``telegram``."""
    match = _EQUIPMENT_ID.search(telegram)
    if match is None or not match.group(1):
        return FALLBACK_NAME
    return topic_safe(decode_equipment_id(match.group(1).decode("latin-1")))
