"""Cut a P1 byte stream into telegrams and check their CRC.

Hand-written rather than dsmr_parser's TelegramBuffer: that one decodes to str and runs a regex
over the whole buffer on every chunk; this one scans bytes with ``find`` and is bounded
(see BENCHMARKS.md, "Framing", for the measured ratio).
"""

from dataclasses import dataclass

from dsmr_shared.crc import crc16

MAX_TELEGRAM_BYTES = 16 * 1024
"""The largest telegram accepted; real ones are 0.2 to 3 KiB. Bounds the buffer."""

_HEX = frozenset(b"0123456789ABCDEF")
_MAX_CRC_LINE = 8  # "!" + 4 hex digits + CR LF, with a little slack for a stray NUL


@dataclass(frozen=True, slots=True)
class Frame:
    """One telegram cut from the stream; ``error`` says why it was rejected (None when good)."""

    data: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the telegram passed framing and CRC."""
        return self.error is None


def check_crc(telegram: bytes) -> str | None:
    """Return why ``telegram``'s CRC is wrong, or None (also when it carries no CRC)."""
    bang = telegram.rfind(b"!")
    if bang < 0:
        return "no '!' end marker"
    digits = telegram[bang + 1 :].rstrip(b"\r\n\x00")
    if not digits:
        return None  # DSMR 2.2 and 3, and some foreign meters, send no CRC
    if len(digits) > 4 or not _HEX.issuperset(digits):
        return f"malformed CRC {digits[:8]!r}"
    expected = int(digits, 16)
    actual = crc16(telegram[: bang + 1])
    if actual != expected:
        return f"CRC mismatch: telegram says {expected:04X}, computed {actual:04X}"
    return None


class TelegramBuffer:
    """Bytes in any chunk sizes in, complete telegrams out; garbage between telegrams is skipped."""

    def __init__(self, max_size: int = MAX_TELEGRAM_BYTES) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self.skipped_bytes = 0

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add ``chunk``; return the telegrams (good and rejected) it completed."""
        buf = self._buf
        buf += chunk
        frames: list[Frame] = []
        while self._drop_to_start():
            frame = self._cut_one()
            if frame is None:
                break
            frames.append(frame)
        if len(buf) > self.max_size:
            frames.append(self._overflow())
        return frames

    def _drop_to_start(self) -> bool:
        start = self._buf.find(b"/")
        if start < 0:
            self.skipped_bytes += len(self._buf)
            self._buf.clear()
            return False
        if start:
            self.skipped_bytes += start
            del self._buf[:start]
        return True

    def _cut_one(self) -> Frame | None:
        buf = self._buf
        bang = buf.find(b"!", 1)
        restart = buf.find(b"/", 1, bang if bang >= 0 else len(buf))
        if restart > 0:
            # A new header before the end marker: the earlier telegram was cut off.
            data = bytes(buf[:restart])
            del buf[:restart]
            return Frame(data, "truncated: a new telegram started before '!'")
        if bang < 0:
            return None
        eol = buf.find(b"\n", bang)
        if eol < 0:
            if len(buf) - bang > _MAX_CRC_LINE:
                return self._reject_at(bang + _MAX_CRC_LINE, "no line end after '!'")
            return None
        data = bytes(buf[: eol + 1])
        del buf[: eol + 1]
        return Frame(data, check_crc(data))

    def _reject_at(self, end: int, reason: str) -> Frame:
        data = bytes(self._buf[:end])
        del self._buf[:end]
        return Frame(data, reason)

    def _overflow(self) -> Frame:
        """Drop a telegram that exceeds the bound, so a stream with no '!' cannot grow memory."""
        end = self._buf.find(b"/", 1)
        return self._reject_at(end if end > 0 else len(self._buf), f"longer than {self.max_size} bytes")
