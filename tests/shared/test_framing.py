"""Framing and CRC on every real telegram, whole, concatenated, with noise, in any chunk size."""

from pathlib import Path

import pytest

from dsmr_shared.framing import MAX_TELEGRAM_BYTES, Frame, TelegramBuffer, check_crc
from tests.helpers import TELEGRAMS

FILES = sorted(TELEGRAMS.glob("*.txt"))
CHUNKS = [1, 7, 64, 4096]


def telegram_of(path: Path) -> bytes:
    """The telegram in a capture: from '/' through the line after '!' (EasyMeter adds junk after)."""
    data = path.read_bytes()
    end = data.index(b"\n", data.index(b"!")) + 1
    return data[data.index(b"/") : end]


def feed(data: bytes, chunk: int, buffer: TelegramBuffer | None = None) -> list[Frame]:
    buffer = buffer or TelegramBuffer()
    frames: list[Frame] = []
    for i in range(0, len(data), chunk):
        frames += buffer.feed(data[i : i + chunk])
    return frames


def test_there_are_real_telegrams() -> None:
    assert len(FILES) >= 13


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_real_telegram_alone(path: Path, chunk: int) -> None:
    frames = feed(path.read_bytes(), chunk)
    assert [f.error for f in frames] == [None]
    assert frames[0].data == telegram_of(path)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_all_concatenated_with_noise_between(chunk: int) -> None:
    noise = b"\x00\xff garbage !! \r\n12AB\r\n"
    stream = b"".join(noise + p.read_bytes() for p in FILES) + noise
    frames = feed(stream, chunk)
    assert [f.data for f in frames] == [telegram_of(p) for p in FILES]
    assert all(f.ok for f in frames)


def test_partial_telegram_is_kept_until_the_rest_arrives() -> None:
    data = (TELEGRAMS / "v5.txt").read_bytes()
    buffer = TelegramBuffer()
    assert buffer.feed(data[:-3]) == []
    assert len(buffer) == len(data) - 3
    frames = buffer.feed(data[-3:])
    assert frames == [Frame(data)]


def test_bad_crc_is_rejected_with_the_reason() -> None:
    data = bytearray((TELEGRAMS / "v5.txt").read_bytes())
    at = data.index(b"1-0:1.8.1(") + 12
    data[at] = ord("9") if data[at] != ord("9") else ord("8")
    (frame,) = TelegramBuffer().feed(bytes(data))
    assert not frame.ok
    assert frame.error is not None and "CRC mismatch" in frame.error


def test_lower_case_or_long_crc_is_malformed() -> None:
    body = telegram_of(TELEGRAMS / "v5.txt")
    bang = body.index(b"!")
    assert "malformed" in (check_crc(body[: bang + 1] + b"6eee\r\n") or "")
    assert "malformed" in (check_crc(body[: bang + 1] + b"6EEE0\r\n") or "")


def test_telegram_without_crc_passes() -> None:
    assert check_crc(telegram_of(TELEGRAMS / "v3.txt")) is None


def test_truncated_telegram_is_rejected_and_the_next_one_survives() -> None:
    data = (TELEGRAMS / "v5.txt").read_bytes()
    frames = TelegramBuffer().feed(data[:300] + data)
    assert [f.ok for f in frames] == [False, True]
    assert frames[0].error is not None and "truncated" in frames[0].error
    assert frames[1].data == data


def test_stream_without_end_marker_stays_bounded() -> None:
    buffer = TelegramBuffer()
    rejected = buffer.feed(b"/")
    for _ in range(2000):
        rejected += buffer.feed(b"x" * 1024)
        assert len(buffer) <= MAX_TELEGRAM_BYTES + 1024
    assert rejected and all(not f.ok for f in rejected)
    assert any("longer than" in (f.error or "") for f in rejected)
    good = (TELEGRAMS / "v5.txt").read_bytes()
    assert [f.data for f in buffer.feed(b"!\r\n" + good) if f.ok] == [good]


def test_garbage_without_start_is_counted_and_dropped() -> None:
    buffer = TelegramBuffer()
    assert buffer.feed(b"no telegram here\r\n" * 100) == []
    assert len(buffer) == 0
    assert buffer.skipped_bytes == 1800


def test_junk_after_end_marker_without_line_end_is_rejected() -> None:
    body = telegram_of(TELEGRAMS / "v5.txt")
    bang = body.index(b"!")
    (frame,) = TelegramBuffer().feed(body[: bang + 1] + b"XXXXXXXXXXXX")
    assert frame.error == "no line end after '!'"
