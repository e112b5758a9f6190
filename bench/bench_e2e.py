"""End to end: serial -> plugin receiver latency at 1 Hz, RSS and CPU per service, 24 h replay memory.

The whole stack runs as real processes (tests/e2e/harness.py): a private mosquitto, the four
services, the simulated meter written into a pty the datalogger reads, a fake PVOutput, and a
plugin that appends ``time.time()`` to a file each time a receiver is called.

- latency: from the return of the ``write`` of a telegram's last byte into the pty to the
  plugin's ``raw_telegram`` receiver being called. Reference (lower bound) in the same run: a bare
  paho subscriber process on the same topic, stamping ``time.time()`` in ``on_message``.
- footprint: RSS and CPU of each service over the 1 Hz window; the floor is the bare subscriber
  (a python process with paho connected). DSMR-reader itself cannot run here (Django, a
  database server, its own datalogger); there is no like-for-like figure for it.
- replay: 86,400 telegrams (24 simulated hours at one per second) written as fast as the stack
  takes them, with backend and datalogger RSS sampled every second: memory must stay flat.

    .venv/bin/python bench/bench_e2e.py                    # 300 s at 1 Hz, then the 24 h replay
    .venv/bin/python bench/bench_e2e.py --seconds 60 --replay 0
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsmr_datalogger.timestamps import parse_timestamp
from tests.e2e.harness import (
    BROKER_CONFIG,
    METER,
    SERVICES,
    Fed,
    Meter,
    Stack,
    events,
    reading_key,
    table_rows,
)
from tests.helpers import Mosquitto, wait_for
from tests.pvoutput.fake_pvoutput import FakePVOutput

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    """Resident set size of a process in MiB."""
    match = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1)) / 1024


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- the reference: a bare paho subscriber (bench/bare_subscriber.py) -------------------------------


def start_bare(port: int, out: Path) -> subprocess.Popen[bytes]:
    """The reference subscriber as its own process."""
    args = [sys.executable, str(Path(__file__).with_name("bare_subscriber.py")), str(port), str(out)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bare_times(out: Path) -> dict[str, float]:
    """stamp -> time.time() the bare subscriber got it."""
    if not out.exists():
        return {}
    pairs = (line.split() for line in out.read_text().splitlines() if line)
    return {stamp: float(at) for at, stamp in pairs}


# -- the stack -------------------------------------------------------------------------------------


@contextmanager
def running_stack(
    root: Path, start: datetime, step: int, extra_env: dict[str, dict[str, str]] | None = None
) -> Iterator[Stack]:
    """A started full stack (services with the recorder plugin), stopped afterwards."""
    workdir = root / "mosquitto"
    workdir.mkdir(parents=True)
    broker = Mosquitto(workdir, extra_config=BROKER_CONFIG)
    broker.start()
    stack = Stack(root, broker, Meter(start, step), FakePVOutput().start(), extra_env=extra_env or {})
    try:
        from tests.helpers import Probe  # noqa: PLC0415

        stack.probe = Probe(broker)
        stack.probe.subscribe("dsmr/service/+/state")
        stack.start_all()
        yield stack
    finally:
        stack.close()
        broker.stop()


def pids(stack: Stack) -> dict[str, int]:
    """Each service's process id."""
    return {name: p.process.pid for name, p in stack.processes.items() if p.process is not None}


@dataclass
class Footprint:
    """CPU share and RSS of one process over a window."""

    name: str
    cpu_percent: float
    rss_mib: float


def footprints(named: dict[str, int], window: Callable[[], None]) -> list[Footprint]:
    """Run ``window`` and return each process's CPU share during it and RSS at its end."""
    before = {name: cpu_seconds(pid) for name, pid in named.items()}
    started = time.monotonic()
    window()
    elapsed = time.monotonic() - started
    return [
        Footprint(name, 100 * (cpu_seconds(pid) - before[name]) / elapsed, rss_mib(pid))
        for name, pid in named.items()
    ]


# -- latency at 1 Hz -------------------------------------------------------------------------------


def feed_at_1hz(stack: Stack, seconds: int) -> dict[str, float]:
    """Write one telegram per second; return stamp -> time.time() after its last byte was written."""
    written: dict[str, float] = {}
    next_at = time.monotonic()
    for _ in range(seconds):
        item: Fed = stack.meter.next()
        next_at += 1.0
        time.sleep(max(0.0, next_at - time.monotonic()))
        stack.meter.send(item)
        written[item.stamp] = time.time()
    return written


def latencies(written: dict[str, float], received: dict[str, float]) -> list[float]:
    """Milliseconds from write to receipt, for the telegrams received."""
    return [(received[s] - at) * 1000 for s, at in written.items() if s in received]


def plugin_times(stack: Stack) -> dict[str, float]:
    """stamp -> time the plugin's raw_telegram receiver was called."""
    return {e["key"]: e["at"] for e in events(stack.record_file, "raw_telegram", METER)}


def describe(name: str, values: list[float]) -> str:
    """One table row of latency figures."""
    return (
        f"| {name} | {len(values)} | {statistics.median(values):.2f} | {percentile(values, 99):.2f} "
        f"| {max(values):.2f} |"
    )


def run_latency(root: Path, seconds: int) -> None:
    """The 1 Hz phase: latency of the plugin and the bare subscriber, footprint of every service."""
    with running_stack(root, datetime.now(UTC).replace(microsecond=0), 1) as stack:
        bare_out = root / "bare.txt"
        bare = start_bare(stack.broker.port, bare_out)
        try:
            wait_for(lambda: "bench-bare" in stack.broker.log_path.read_text(), 10, message="bare up")
            warm = feed_at_1hz(stack, 5)
            wait_for(lambda: len(plugin_times(stack)) >= len(warm), 10)
            written: dict[str, float] = {}
            named = {**pids(stack), "reference: python + paho": bare.pid}
            feet = footprints(named, lambda: written.update(feed_at_1hz(stack, seconds)))
            wait_for(lambda: set(written) <= set(plugin_times(stack)), 20, message="all received")
            wait_for(lambda: set(written) <= set(bare_times(bare_out)), 20, message="bare received")
        finally:
            bare.terminate()
            bare.wait(10)
    plugin = latencies(written, plugin_times_from(root))
    reference = latencies(written, bare_times(bare_out))
    saved = latencies(written, post_save_times(root, written))
    print("\nlatency, pty write -> receiver called, ms")
    print("| receiver | telegrams | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
    print(describe("plugin, raw_telegram (datalogger, broker, plugin runner, worker)", plugin))
    print(describe("reference: bare paho subscriber on raw_telegram", reference))
    print(describe("plugin, post_save DsmrReading (+ backend: parse, store, publish)", saved))
    print(f"ratio p50 {statistics.median(plugin) / statistics.median(reference):.2f}")
    print(f"\nfootprint over {seconds} s at 1 Hz\n| process | CPU % of one core | RSS MiB |\n|---|---:|---:|")
    for f in feet:
        print(f"| {f.name} | {f.cpu_percent:.2f} | {f.rss_mib:.1f} |")


def post_save_times(root: Path, written: dict[str, float]) -> dict[str, float]:
    """stamp -> time the plugin's post_save receiver got that telegram's reading."""
    by_time = {e["key"]: e["at"] for e in events(root / "events.jsonl", "post_save", "DsmrReading")}
    return {stamp: by_time[iso] for stamp, iso in stamp_times(written).items() if iso in by_time}


def stamp_times(written: dict[str, float]) -> dict[str, str]:
    """stamp (YYMMDDhhmmssX) -> the reading's ISO 8601 UTC timestamp."""
    return {stamp: reading_key(parse_timestamp(stamp)) for stamp in written}


def plugin_times_from(root: Path) -> dict[str, float]:
    """The plugin's receipt times, read after the stack stopped."""
    return {e["key"]: e["at"] for e in events(root / "events.jsonl", "raw_telegram", METER)}


# -- 24 simulated hours, replayed fast ---------------------------------------------------------------


def run_replay(root: Path, count: int, settle: int, backend_env: dict[str, str]) -> None:
    """Write ``count`` one-second telegrams as fast as the stack takes them; sample RSS every second."""
    start = (datetime.now(UTC) - timedelta(seconds=count + 3600)).replace(microsecond=0)
    with running_stack(root, start, 1, {"backend": backend_env}) as stack:
        named = {k: v for k, v in pids(stack).items() if k in ("backend", "datalogger")}
        samples: list[tuple[float, dict[str, float]]] = []
        began = time.monotonic()
        last_sample = 0.0
        for i in range(count):
            stack.meter.send()
            if i % 1000 == 0:
                keep_backlog_below(stack, i, BACKLOG)
            if time.monotonic() - last_sample >= 1.0:
                last_sample = time.monotonic()
                samples.append((i, {k: rss_mib(p) for k, p in named.items()}))
        wait_for(lambda: table_rows(stack.database, "readings") >= count, 600, interval=1, message="stored")
        elapsed = time.monotonic() - began
        for second in range(settle):  # the backend computes the replayed days' statistics now
            samples.append((count + second, {k: rss_mib(p) for k, p in named.items()}))
            time.sleep(1)
    print(
        f"\nreplay: {count} telegrams stored in {elapsed:.0f} s ({count / elapsed:.0f}/s), "
        f"then {settle} s idle"
    )
    print(
        "| telegrams written (+ seconds after the last was stored) | "
        + " | ".join(f"{k} RSS MiB" for k in named)
        + " |"
    )
    print("|---:|" + "---:|" * len(named))
    for written, rss in thin(samples, 16):
        label = f"{written:.0f}" if written <= count else f"{count} + {written - count:.0f} s"
        print(f"| {label} | " + " | ".join(f"{rss[k]:.1f}" for k in named) + " |")


BACKLOG = 20_000
"""Most telegrams written but not stored yet: more would overflow the datalogger's 100 MB spool,
which then drops the oldest by design (a meter sends one a second; this replay is 1000 times that)."""


def keep_backlog_below(stack: Stack, written: int, limit: int) -> None:
    """Wait while more than ``limit`` written telegrams are not stored yet."""
    wait_for(lambda: written - table_rows(stack.database, "readings") < limit, 600, interval=0.5)


def thin(samples: list[tuple[float, dict[str, float]]], rows: int) -> list[tuple[float, dict[str, float]]]:
    """About ``rows`` evenly spaced samples, the last one included."""
    step = max(1, len(samples) // rows)
    return [*samples[::step][: rows - 1], samples[-1]]


def main() -> int:
    """Run the phases asked for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=int, default=300, help="telegrams at 1 Hz for latency and footprint"
    )
    parser.add_argument("--replay", type=int, default=86_400, help="telegrams in the fast replay (0: skip)")
    parser.add_argument("--backend-env", nargs="*", default=[], help="KEY=VALUE for the replay's backend")
    parser.add_argument("--settle", type=int, default=60, help="seconds of RSS samples after the replay")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        if args.seconds:
            run_latency(Path(tmp) / "live", args.seconds)
        if args.replay:
            backend_env = dict(pair.split("=", 1) for pair in args.backend_env)
            run_replay(Path(tmp) / "replay", args.replay, args.settle, backend_env)
    print(f"\nservices: {', '.join(SERVICES)}; python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
