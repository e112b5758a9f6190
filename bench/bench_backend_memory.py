"""Backend memory, in process: RSS (and optionally tracemalloc) while simulated telegrams are stored.

Run: .venv/bin/python bench/bench_backend_memory.py [--count 86400] [--tracemalloc 20000,80000]

A real ``Backend`` (bus on a private mosquitto, SQLite file, outputs, post_save, the statistics
loop as the e2e harness configures it) runs in this process; the datalogger's simulator makes one
telegram per simulated second, handed to the ingest queue as raw_telegram envelopes (at most
``--backlog`` queued at once). VmRSS from /proc/self/status is printed every ``--every`` telegrams;
with ``--tracemalloc A,B`` the top allocation sites that grew between telegram A and B are listed.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsmr_backend.decode import Incoming
from dsmr_backend.service import Backend
from dsmr_backend.settings import BackendSettings
from dsmr_datalogger.simulator import Simulator, SimulatorConfig
from tests.backend.telegrams import envelope, raw_topic
from tests.helpers import Mosquitto, wait_for

METER = "sim"


def rss_mib() -> float:
    """This process's resident set size in MiB."""
    match = re.search(r"^VmRSS:\s+(\d+)", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1)) / 1024


def _noop() -> None:
    return None


def start_backend(root: Path, broker: Mosquitto, env: dict[str, str]) -> tuple[Backend, threading.Event]:
    """A Backend on ``broker`` with the e2e harness's settings, running in a thread."""
    settings = {
        **broker.env(),
        "DSMR_BACKEND_DATA_DIR": str(root / "backend"),
        "DSMR_BACKEND_POST_SAVE": "all",
        "DSMR_BACKEND_HA_DISCOVERY": "false",
        "DSMR_BACKEND_LOOP_INTERVAL": "0.5",
        "DSMR_LOG_LEVEL": "WARNING",
        **env,
    }
    os.environ.update(settings)
    backend = Backend(BackendSettings())
    stop = threading.Event()
    threading.Thread(target=backend.run, args=(stop,), daemon=True).start()
    wait_for(lambda: backend.bus.connected, 20, message="backend connected")
    return backend, stop


def describe(backend: Backend) -> str:
    """Database connections in use and pooled, and the publishes awaiting the broker's PUBACK."""
    pool = backend.store.engine.pool
    return f"connections {pool.status()}; unacknowledged publishes {backend.bus.unacknowledged()}"


def report_growth(first: tracemalloc.Snapshot, second: tracemalloc.Snapshot, top: int) -> None:
    """Print the allocation sites that grew most between two snapshots."""
    print(f"\ntop {top} growing allocation sites")
    for stat in second.compare_to(first, "lineno")[:top]:
        print(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d}  {stat.traceback}")


def run(args: argparse.Namespace, root: Path) -> None:
    """Feed ``args.count`` telegrams and print RSS as they are stored."""
    (root / "mosquitto").mkdir()
    broker = Mosquitto(root / "mosquitto")
    broker.start()
    env = dict(pair.split("=", 1) for pair in args.env)
    backend, stop = start_backend(root, broker, env)
    marks = [int(x) for x in args.tracemalloc.split(",")] if args.tracemalloc else []
    snapshots: list[tracemalloc.Snapshot] = []
    start = (datetime.now(UTC) - timedelta(seconds=args.count + 3600)).replace(microsecond=0)
    simulator = Simulator(SimulatorConfig(start=start))
    topic = raw_topic(METER)
    print(f"start: {rss_mib():.1f} MiB")
    began = time.monotonic()
    for i in range(1, args.count + 1):
        payload = envelope(METER, simulator.step().data.decode("ascii"))
        backend.ingest.submit(Incoming(topic, payload, False, _noop))
        if i % 500 == 0:
            wait_for(lambda: backend.ingest.pending() < args.backlog, 600, 0.005)
        if i % args.every == 0:
            print(f"{i:>7d}: {rss_mib():.1f} MiB  {describe(backend)}", flush=True)
        if i in marks:
            if not tracemalloc.is_tracing():
                tracemalloc.start(args.frames)
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
    wait_for(lambda: backend.ingest.pending() == 0, 600, 0.05)
    print(f"stored {args.count} in {time.monotonic() - began:.0f} s: {rss_mib():.1f} MiB")
    for second in range(args.settle):
        time.sleep(1)
        if (second + 1) % 5 == 0:
            print(f"  + {second + 1} s idle: {rss_mib():.1f} MiB", flush=True)
    if len(snapshots) >= 2:
        report_growth(snapshots[0], snapshots[-1], args.top)
    stop.set()
    time.sleep(1)
    broker.stop()


def main() -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=86_400, help="telegrams (one simulated second each)")
    parser.add_argument("--every", type=int, default=5000, help="print RSS every N telegrams")
    parser.add_argument("--backlog", type=int, default=2000, help="most telegrams queued at once")
    parser.add_argument("--settle", type=int, default=20, help="seconds of RSS samples afterwards")
    parser.add_argument("--tracemalloc", default="", help="A,B: compare allocations at telegram A and B")
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per allocation")
    parser.add_argument("--top", type=int, default=25, help="allocation sites to list")
    parser.add_argument("--env", nargs="*", default=[], help="KEY=VALUE settings for the backend")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
