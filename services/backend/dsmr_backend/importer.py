"""``dsmr-backend import PATH...``: historical telegram captures straight into the store.

Files hold telegrams back to back as a P1 port sends them (CRLF, latin-1); ``.gz`` files are
read through gzip; folders are walked recursively in name order. Telegrams are framed and
CRC-checked by ``dsmr_shared.framing``, parsed, and stored in batches with the same idempotent
insert as live ingest, so importing a capture twice (or one that overlaps live data) stores each
reading once. Afterwards every statistic is computed. No broker is needed.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from dsmr_backend.analytics import PriceTable
from dsmr_backend.parser import TelegramError, parse
from dsmr_backend.statistics_task import StatisticsTask
from dsmr_backend.storage.rows import MeterReading
from dsmr_backend.storage.statistics_store import StatisticsStore
from dsmr_backend.storage.store import ReadingStore
from dsmr_shared.framing import TelegramBuffer
from dsmr_shared.meters import meter_name

CHUNK_BYTES = 1 << 20
BATCH = 5_000
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class ImportSummary:
    """What an import did."""

    files: int = 0
    telegrams: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    days: int = 0

    def lines(self) -> list[str]:
        """The summary as printed at the end."""
        rate = self.telegrams / self.seconds if self.seconds else 0.0
        out = [
            f"files: {self.files}",
            f"telegrams: {self.telegrams} ({rate:,.0f}/s)",
            f"imported: {self.imported}",
            f"duplicates: {self.duplicates}",
            f"rejected: {sum(self.rejected.values())}",
        ]
        out += [f"  {count} x {reason}" for reason, count in self.rejected.most_common()]
        out.append(f"days with statistics added: {self.days}")
        return out


def capture_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file as given, each folder's files recursively in name order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return found


def read_chunks(path: Path) -> Iterator[tuple[bytes, int]]:
    """The file's bytes in chunks (gunzipped when it is gzip, by its magic bytes), each with how
    far into the file on disk reading has got."""
    with path.open("rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        handle = gzip.GzipFile(fileobj=raw) if gzipped else raw
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk, raw.tell()


def reason_kind(reason: str) -> str:
    """A rejection reason without its per-telegram details, for counting."""
    return reason.split(":", maxsplit=1)[0].split(" b'", maxsplit=1)[0].strip()


class Progress:
    """A progress line on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, total_bytes: int, stream: TextIO | None = None, every: float = 2.0) -> None:
        self.total = max(total_bytes, 1)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = 0.2 if self.tty else every
        self.start = time.monotonic()
        self._next = self.start + self.every

    def update(self, done_bytes: int, telegrams: int, *, final: bool = False) -> None:
        """Show progress when due (or always when ``final``)."""
        now = time.monotonic()
        if not final and now < self._next:
            return
        self._next = now + self.every
        share = min(done_bytes / self.total, 1.0)
        rate = telegrams / max(now - self.start, 1e-9)
        bar = "#" * int(share * 30)
        text = f"import [{bar:<30}] {share:6.1%} {telegrams} telegrams, {rate:,.0f}/s"
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()


class Importer:
    """Reads captures, stores readings in batches and counts what happened."""

    def __init__(self, store: ReadingStore, *, meter: str | None = None, batch: int = BATCH) -> None:
        self.store = store
        self.meter = meter
        self.batch = batch
        self.summary = ImportSummary()
        self._pending: list[MeterReading] = []

    def run(self, paths: Iterable[Path], progress: Progress | None = None) -> ImportSummary:
        """Import every file; return the summary."""
        started = time.monotonic()
        files = capture_files(paths)
        done = 0
        for path in files:
            for position in self._frames_of(path):
                if progress is not None:
                    progress.update(done + position, self.summary.telegrams)
            done += path.stat().st_size
            self.summary.files += 1
        self._flush()
        self.summary.seconds = time.monotonic() - started
        if progress is not None:
            progress.update(done, self.summary.telegrams, final=True)
        return self.summary

    def _frames_of(self, path: Path) -> Iterator[int]:
        """Feed one file through framing; yields the bytes of the file read so far."""
        buffer = TelegramBuffer()
        for chunk, position in read_chunks(path):
            for frame in buffer.feed(chunk):
                self._telegram(frame.data, frame.error)
            yield position
        if len(buffer):
            self._reject("incomplete telegram at the end of the file")

    def _telegram(self, data: bytes, error: str | None) -> None:
        self.summary.telegrams += 1
        if error is not None:
            self._reject(error)
            return
        text = data.decode("latin-1")
        try:
            reading = parse(text, check_crc=False)  # framing checked the CRC already
        except TelegramError as exc:
            self.summary.rejected[f"bad telegram ({reason_kind(exc.reason)})"] += 1
            return
        if reading.timestamp is None:
            self._reject("no telegram time (DSMR 2.2/3 captures carry none)")
            return
        meter = self.meter or meter_name(reading.meter.equipment_id)
        self._pending.append(MeterReading(meter, reading.timestamp, reading, text))
        if len(self._pending) >= self.batch:
            self._flush()

    def _reject(self, reason: str) -> None:
        self.summary.rejected[reason_kind(reason)] += 1

    def _flush(self) -> None:
        if not self._pending:
            return
        result = self.store.save(self._pending)
        self.summary.imported += len(result.new)
        self.summary.duplicates += result.duplicates
        self._pending = []


def compute_statistics(store: ReadingStore, prices: PriceTable | None, stream: TextIO | None = None) -> int:
    """Compute every statistic the imported readings allow; return the days added."""
    task = StatisticsTask(StatisticsStore(store.engine), prices=prices)
    out = stream or sys.stderr
    added = 0
    while True:
        saved, more = task.run(budget_s=2.0)
        added += sum(len(s.days) for s in saved)
        out.write(f"statistics: {added} day(s) computed so far\n")
        if not more:
            return added
