"""Framing + CRC benchmark: dsmr_shared.framing vs dsmr-parser 1.11.2 on V5 telegrams in 64-byte chunks.

The stream is the real V5 fixture followed by simulated DSMR 5.0 telegrams (every one distinct,
each with its CRC), cut into 64-byte chunks as a serial port would hand them over. Ours feeds the
bytes to ``dsmr_shared.framing.TelegramBuffer`` (framing and CRC in one go). The reference decodes
each chunk (dsmr_parser works on str), appends it to ``dsmr_parser.clients.telegram_buffer
.TelegramBuffer``, drains ``get_all()`` and checks every telegram with
``TelegramParser.validate_checksum``. Both run in alternating rounds in this one process; each
side's best round counts. Every round must find every telegram good, or the script fails.

    .venv/bin/python bench/bench_framing.py              # about 10 s
    .venv/bin/python bench/bench_framing.py --telegrams 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from dsmr_parser.clients.telegram_buffer import TelegramBuffer as ReferenceBuffer
from dsmr_parser.parsers import TelegramParser

from dsmr_datalogger.simulator import SimulatorConfig, telegrams
from dsmr_shared.framing import TelegramBuffer

FIXTURE = Path("/work/shared/telegrams/real/v5.txt")
CHUNK = 64
TARGET = 20_000


def make_stream(count: int) -> list[bytes]:
    """The V5 fixture plus ``count - 1`` simulated V5 telegrams, in 64-byte chunks."""
    start = datetime(2026, 1, 14, 6, 0, tzinfo=UTC)
    data = FIXTURE.read_bytes() + b"".join(
        itertools.islice(telegrams(SimulatorConfig(start=start)), count - 1)
    )
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]


def ours(chunks: list[bytes]) -> int:
    """Frame and CRC-check with dsmr_shared; return the number of good telegrams."""
    buffer = TelegramBuffer()
    good = 0
    for chunk in chunks:
        for frame in buffer.feed(chunk):
            good += frame.ok
    return good


def reference(chunks: list[bytes]) -> int:
    """Frame with dsmr_parser's TelegramBuffer and check each CRC; return the good ones."""
    buffer = ReferenceBuffer()
    good = 0
    for chunk in chunks:
        buffer.append(chunk.decode("latin-1"))
        for telegram in buffer.get_all():
            TelegramParser.validate_checksum(telegram)  # raises on a bad CRC
            good += 1
    return good


def best_rate(run: Callable[[list[bytes]], int], chunks: list[bytes], count: int) -> float:
    """Telegrams per second of one round; fails when a telegram was lost."""
    started = time.perf_counter()
    found = run(chunks)
    elapsed = time.perf_counter() - started
    if found != count:
        raise SystemExit(f"{run.__name__} found {found} good telegrams, expected {count}")
    return count / elapsed


def main() -> int:
    """Run the rounds and print both rates and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--telegrams", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chunks = make_stream(args.telegrams)
    size = sum(map(len, chunks))
    print(f"{args.telegrams} V5 telegrams, {size} bytes, {len(chunks)} chunks of {CHUNK} bytes")
    rates: dict[str, float] = {"dsmr_shared": 0.0, "dsmr_parser": 0.0}
    for _ in range(args.rounds):
        rates["dsmr_shared"] = max(rates["dsmr_shared"], best_rate(ours, chunks, args.telegrams))
        rates["dsmr_parser"] = max(rates["dsmr_parser"], best_rate(reference, chunks, args.telegrams))
    for name, rate in rates.items():
        print(f"{name:12s} {rate:12,.0f} telegrams/s  ({rate * size / args.telegrams / 1e6:.1f} MB/s)")
    ratio = rates["dsmr_shared"] / rates["dsmr_parser"]
    print(f"ratio        {ratio:12.1f}x  (ours / dsmr_parser)")
    verdict = "meets" if rates["dsmr_shared"] >= TARGET else "MISSES"
    print(f"target       {TARGET:12,} telegrams/s: {verdict}")
    return 0 if rates["dsmr_shared"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
