"""``dsmr-backend import``: telegrams/s from a capture file into SQLite, then the statistics.

Run: .venv/bin/python bench/bench_import.py [--count 50000] [--reference 5000]

Data: the datalogger's simulator (DSMR 5.0, a telegram a second, gas every 5 minutes) written
back to back into one capture file. Ours: ``Importer`` (framing + CRC, our parser, batched
idempotent inserts; the same code as the command) into a fresh SQLite file, then
``compute_statistics`` (per-minute electricity, gas, quarter-hour peaks, hour and day rows).
Reference in the same run, as DSMR-reader stores telegrams: dsmr_parser 1.11.2 parses each
telegram (CRC on) and one INSERT + COMMIT per telegram goes into SQLite (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from common import reference_store

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dsmr_backend.importer import Importer, compute_statistics  # noqa: E402
from dsmr_backend.storage.engine import make_engine  # noqa: E402
from dsmr_backend.storage.store import ReadingStore  # noqa: E402
from dsmr_datalogger.simulator import Simulator, SimulatorConfig  # noqa: E402

START = datetime(2025, 6, 1, tzinfo=UTC)


def write_capture(path: Path, count: int) -> list[bytes]:
    """``count`` simulated telegrams, one a second, into ``path``; return them."""
    telegrams = list(islice(Simulator(SimulatorConfig(start=START)), count))
    path.write_bytes(b"".join(telegrams))
    return telegrams


def bench_ours(capture: Path, workdir: Path, count: int) -> tuple[float, float]:
    """Telegrams/s of the import and of the statistics over what it stored."""
    store = ReadingStore(make_engine(f"sqlite:///{workdir / 'ours.sqlite3'}"))
    store.migrate()
    started = time.perf_counter()
    summary = Importer(store).run([capture])
    imported = time.perf_counter()
    compute_statistics(store, None, io.StringIO())
    computed = time.perf_counter()
    store.engine.dispose()
    assert summary.imported == count, summary.lines()
    return count / (imported - started), count / (computed - imported)


def main() -> int:
    """Run both and print the figures and their ratio."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--count", type=int, default=50_000, help="telegrams in the capture we import")
    args.add_argument("--reference", type=int, default=5_000, help="telegrams for the reference")
    options = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        workdir = Path(tmp)
        capture = workdir / "capture.dsmr"
        telegrams = write_capture(capture, options.count)
        sample = [t.decode("latin-1") for t in telegrams[: options.reference]]
        reference = reference_store(sample, workdir / "reference.sqlite3")
        ours, statistics = bench_ours(capture, workdir, options.count)
    print(f"cpu count: {os.cpu_count()}")
    print(f"ours: import {ours:,.0f} telegrams/s ({options.count} telegrams, {capture.name})")
    print(f"ours: statistics {statistics:,.0f} readings/s (minutes, gas, peaks, hours, days)")
    print(f"reference (dsmr_parser + 1 INSERT/COMMIT per telegram): {reference:,.0f} telegrams/s")
    print(f"ratio (import): {ours / reference:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
