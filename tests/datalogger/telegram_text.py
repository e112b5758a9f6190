"""Tiny, independent readers of telegram text for the tests (not the backend's parser)."""

import re
from dataclasses import dataclass

from dsmr_shared.crc import crc16
from tests.helpers import TELEGRAMS

_LINE = re.compile(r"^(\d+-\d+:\d+\.\d+\.\d+)((?:\([^)]*\))+)\r$", re.MULTILINE)


def objects(telegram: bytes) -> dict[str, list[str]]:
    """Map each OBIS code to the values in its parentheses."""
    text = telegram.decode("latin-1")
    return {m.group(1): re.findall(r"\(([^)]*)\)", m.group(2)) for m in _LINE.finditer(text)}


def number(value: str) -> float:
    """``001234.567*kWh`` -> 1234.567."""
    return float(value.split("*", 1)[0])


def milli(value: str) -> int:
    """``001234.567*kWh`` -> 1234567 (exact, no float rounding)."""
    whole, _, fraction = value.split("*", 1)[0].partition(".")
    return int(whole) * 1000 + int(fraction.ljust(3, "0")[:3])


def crc_ok(telegram: bytes) -> bool:
    """True when the telegram ends in ``!XXXX\\r\\n`` with the right CRC-16/ARC."""
    match = re.search(rb"!([0-9A-F]{4})\r\n$", telegram)
    return match is not None and int(match.group(1), 16) == crc16(telegram[: match.start() + 1])


@dataclass(frozen=True)
class RealTelegram:
    """One capture of the kit, and the part a framer must hand on (up to the CRC line's end)."""

    name: str
    raw: bytes

    @property
    def framed(self) -> bytes:
        """The file from '/' through the line end after '!' (some files carry junk after it)."""
        end = self.raw.index(b"\n", self.raw.index(b"!")) + 1
        return self.raw[:end]


def real_telegrams() -> list[RealTelegram]:
    """Every telegram of the kit, sorted by name."""
    return [RealTelegram(p.stem, p.read_bytes()) for p in sorted(TELEGRAMS.glob("*.txt"))]
