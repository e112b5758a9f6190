"""What the signal outbox adds to an ingest transaction: ReadingStore.save with and without it.

Batches of V5 readings go into a SQLite file in turn with and without staging their post_save
(the default ``newest`` mode: one outbox row per meter and batch); the medians are printed.

    .venv/bin/python bench/bench_outbox.py [--batches 120] [--size 100] [--mode newest]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dsmr_backend.outbox import Outbox  # noqa: E402
from dsmr_backend.record_signals import reading_envelopes  # noqa: E402
from dsmr_backend.signals import post_save  # noqa: E402
from dsmr_backend.storage.engine import make_engine  # noqa: E402
from dsmr_backend.storage.store import ReadingStore  # noqa: E402
from dsmr_shared.counters import Counters  # noqa: E402
from tests.backend.telegrams import v5_item  # noqa: E402


def main() -> int:
    """Time the saves and print both medians and the difference per telegram."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--batches", type=int, default=120, help="batches, half of them with the outbox")
    args.add_argument("--size", type=int, default=100, help="readings per batch")
    args.add_argument("--mode", default="newest", choices=["newest", "all"], help="DSMR_BACKEND_POST_SAVE")
    options = args.parse_args()
    items = [v5_item(i) for i in range(options.batches * options.size)]
    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        store = ReadingStore(make_engine(f"sqlite:///{tmp}/dsmr.sqlite3"))
        store.migrate()
        outbox = Outbox(store.engine, Counters(), [post_save])
        choose = partial(reading_envelopes, mode=options.mode)
        for n in range(options.batches):
            staged = n % 2 == 1
            batch = items[n * options.size : (n + 1) * options.size]
            started = time.perf_counter()
            store.save(batch, then=outbox.staging(choose) if staged else None)
            times[staged].append(time.perf_counter() - started)
        store.engine.dispose()
    without, with_outbox = statistics.median(times[False]), statistics.median(times[True])
    print(f"batch of {options.size}, median: {without * 1e3:.2f} ms without, {with_outbox * 1e3:.2f} ms with")
    print(f"added per telegram: {(with_outbox - without) / options.size * 1e6:.1f} µs ({options.mode} mode)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
