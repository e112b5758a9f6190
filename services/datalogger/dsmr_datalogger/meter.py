"""The meter's name (raw_telegram's sender), taken from its equipment id when not configured."""

import re

from dsmr_shared.meters import decode_hex_text, meter_name

# 0-0:96.1.1 (DSMR 4/5), 0-0:96.1.0 (Belgium, some DSMR 2.2/3), 0-0:96.1.255*255 (Germany).
_EQUIPMENT_ID = re.compile(rb"^0-0:96\.1\.(?:1|0|255)(?:\*255)?\(([^)\r\n]*)\)", re.MULTILINE)


def meter_name_of(telegram: bytes) -> str:
    """Return the topic-safe name of the meter that sent ``telegram``."""
    match = _EQUIPMENT_ID.search(telegram)
    raw = match.group(1).decode("latin-1") if match else ""
    return meter_name(decode_hex_text(raw) if raw else None)
