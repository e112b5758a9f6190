"""CRC-16/ARC as DSMR uses it: reflected polynomial 0xA001, init 0, no final xor."""

from collections.abc import Callable

Crc16 = Callable[[bytes], int]


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_pure(data: bytes) -> int:
    """Compute CRC-16/ARC in pure Python (the fallback; about 50x slower than crcmod)."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def _load_fast() -> Crc16 | None:
    try:
        import crcmod  # noqa: PLC0415 - optional C accelerator
    except ImportError:
        return None
    fn: Crc16 = crcmod.mkCrcFun(0x18005, rev=True, initCrc=0x0000, xorOut=0x0000)
    return fn


crc16_fast: Crc16 | None = _load_fast()

crc16: Crc16 = crc16_fast or crc16_pure
"""The fastest CRC-16/ARC available: crcmod's C extension, or the pure-Python table."""
