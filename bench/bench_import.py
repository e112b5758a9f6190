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
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

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


def bench_reference(telegrams: list[bytes], workdir: Path) -> float:
    """dsmr_parser parse + one SQLite INSERT and COMMIT per telegram."""
    from dsmr_parser import telegram_specifications  # noqa: PLC0415 - dev-only reference
    from dsmr_parser.parsers import TelegramParser  # noqa: PLC0415

    parser = TelegramParser(telegram_specifications.V5, apply_checksum_validation=True)
    conn = sqlite3.connect(workdir / "reference.sqlite3")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE reading (id INTEGER PRIMARY KEY, timestamp TEXT UNIQUE, d1 NUMERIC, "
        "d2 NUMERIC, r1 NUMERIC, r2 NUMERIC, cd NUMERIC, cr NUMERIC, gas NUMERIC, gas_ts TEXT)"
    )
    started = time.perf_counter()
    for data in telegrams:
        t = parser.parse(data.decode("latin-1"))
        gas = t.get_mbus_device_by_channel(1).MBUS_METER_READING
        conn.execute(
            "INSERT INTO reading (timestamp, d1, d2, r1, r2, cd, cr, gas, gas_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                t.P1_MESSAGE_TIMESTAMP.value.isoformat(),
                float(t.ELECTRICITY_USED_TARIFF_1.value),
                float(t.ELECTRICITY_USED_TARIFF_2.value),
                float(t.ELECTRICITY_DELIVERED_TARIFF_1.value),
                float(t.ELECTRICITY_DELIVERED_TARIFF_2.value),
                float(t.CURRENT_ELECTRICITY_USAGE.value),
                float(t.CURRENT_ELECTRICITY_DELIVERY.value),
                float(gas.value),
                gas.datetime.isoformat(),
            ),
        )
        conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return len(telegrams) / elapsed


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
        reference = bench_reference(telegrams[: options.reference], workdir)
        ours, statistics = bench_ours(capture, workdir, options.count)
    print(f"cpu count: {os.cpu_count()}")
    print(f"ours: import {ours:,.0f} telegrams/s ({options.count} telegrams, {capture.name})")
    print(f"ours: statistics {statistics:,.0f} readings/s (minutes, gas, peaks, hours, days)")
    print(f"reference (dsmr_parser + 1 INSERT/COMMIT per telegram): {reference:,.0f} telegrams/s")
    print(f"ratio (import): {ours / reference:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
