"""Datalogger footprint: CPU and RSS of dsmr-datalogger at 1 telegram/s on its simulator.

Starts a private mosquitto on a free 127.0.0.1 port and the real console script (simulator at
real time), lets it warm up, then reads /proc/<pid>/stat and /proc/<pid>/status over the
measured window. No reference exists for this figure (DSMR-reader's datalogger needs Django and
a database); it documents what a Raspberry Pi has to spare.

    .venv/bin/python bench/bench_datalogger.py             # 60 s measured, after 5 s warm-up
    .venv/bin/python bench/bench_datalogger.py --seconds 20
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import start_broker

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """Resident set size (or its peak with key VmHWM) of a process in KiB."""
    match = re.search(rf"^{key}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


def main() -> int:
    """Measure and print CPU %, RSS and the telegrams published."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-datalogger-"))
    broker, port = start_broker(workdir)
    script = Path(sys.executable).parent / "dsmr-datalogger"
    env = {
        **os.environ,
        "DSMR_MQTT_PORT": str(port),
        "DSMR_DATALOGGER_PORT": "simulate",
        "DSMR_DATALOGGER_STATS_SECONDS": str(args.seconds + args.warmup + 60),
        "DSMR_DATALOGGER_SPOOL_PATH": str(workdir / "spool.sqlite3"),
    }
    log = workdir / "datalogger.log"
    with log.open("wb") as out:
        service = subprocess.Popen([str(script)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(args.warmup)
        cpu_before = cpu_seconds(service.pid)
        time.sleep(args.seconds)
        cpu = cpu_seconds(service.pid) - cpu_before
        rss, peak = rss_kib(service.pid), rss_kib(service.pid, "VmHWM")
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(15)
        broker.terminate()
        broker.wait(10)
    published = re.findall(r"published=(\d+)", log.read_text())
    print(f"measured {args.seconds:.0f} s at 1 telegram/s (simulator), after {args.warmup:.0f} s warm-up")
    print(f"CPU  {100 * cpu / args.seconds:6.2f} % of one core ({cpu:.2f} s)")
    print(f"RSS  {rss / 1024:6.1f} MiB (peak {peak / 1024:.1f} MiB)")
    print(f"published {published[-1] if published else '?'} telegrams in total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
