"""Telegram builders for backend tests and the ingest benchmark: distinct times, valid CRCs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dsmr_backend.parser import parse
from dsmr_backend.storage.rows import MeterReading
from dsmr_shared.crc import crc16
from dsmr_shared.envelope import Envelope

TELEGRAMS = Path(__file__).resolve().parents[3] / "shared" / "telegrams" / "real"
RAW_TELEGRAM = "dsmr_datalogger.signals.raw_telegram"
V5_LOCAL_START = datetime(2017, 1, 2, 19, 20, 2)  # the V5 fixture's time: winter, UTC+1
_TIME_LINE = re.compile(r"0-0:1\.0\.0\(\d{12}[SW]\)")


def real_telegrams() -> dict[str, str]:
    """Every real telegram of the kit by file stem, as the datalogger sends it (latin-1 text)."""
    return {path.stem: path.read_bytes().decode("latin-1") for path in sorted(TELEGRAMS.glob("*.txt"))}


def v5() -> str:
    """The V5 fixture telegram."""
    return (TELEGRAMS / "v5.txt").read_bytes().decode("latin-1")


def with_crc(text: str) -> str:
    """Recompute the CRC after '!' over '/'..'!' inclusive."""
    end = text.index("!")
    body = text[: end + 1]
    return f"{body}{crc16(body.encode('latin-1')):04X}\r\n"


def v5_at(offset_s: int) -> str:
    """The V5 telegram ``offset_s`` seconds after its own time (winter time, valid CRC)."""
    local = V5_LOCAL_START + timedelta(seconds=offset_s)
    line = f"0-0:1.0.0({local:%y%m%d%H%M%S}W)"
    return with_crc(_TIME_LINE.sub(line, v5(), count=1))


def v5_item(offset_s: int, meter: str = "m1") -> MeterReading:
    """``v5_at(offset_s)`` parsed, as ingest hands it to the store."""
    text = v5_at(offset_s)
    reading = parse(text)
    assert reading.timestamp is not None
    return MeterReading(meter, reading.timestamp, reading, text)


def v5_utc(offset_s: int) -> datetime:
    """The UTC time of ``v5_at(offset_s)``."""
    return (V5_LOCAL_START + timedelta(seconds=offset_s) - timedelta(hours=1)).replace(tzinfo=UTC)


def raw_topic(meter: str, prefix: str = "dsmr") -> str:
    """The raw_telegram topic of a meter."""
    return f"{prefix}/{RAW_TELEGRAM.replace('.', '/')}/{meter}"


def envelope(meter: str, text: str) -> bytes:
    """A raw_telegram envelope as the datalogger publishes it."""
    return Envelope.new(RAW_TELEGRAM, meter, {"data": text}).to_json()
