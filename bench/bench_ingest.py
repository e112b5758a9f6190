"""Backend ingest: telegrams/s through a real mosquitto into SQLite with one backend process.

Run: .venv/bin/python bench/bench_ingest.py [--count 20000] [--reference 3000]

Ours: a private mosquitto, one `dsmr-backend` subprocess (SQLite file, HA discovery on), N
raw_telegram envelopes (the V5 fixture with distinct timestamps and recomputed CRCs) published
at QoS 1; the clock runs from the first publish until the N-th reading is committed.
Reference in the same run ("reference-style", as DSMR-reader stores a telegram): dsmr_parser
1.11.2 parses each telegram (CRC on) and one INSERT + COMMIT per telegram goes into SQLite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import reference_store

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.backend.telegrams import envelope, raw_topic, v5_at  # noqa: E402
from tests.helpers import Mosquitto, Probe, ServiceProcess, console_script, wait_for  # noqa: E402

METER = "bench"


def count_rows(database: Path) -> int:
    """Readings committed so far (0 before the backend created its tables)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def publish_all(broker: Mosquitto, payloads: list[bytes]) -> float:
    """Publish every payload at QoS 1 as fast as the broker acknowledges; return the start time."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    done = threading.Event()
    acked = [0]

    def on_publish(*_args: object) -> None:
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = raw_topic(METER)
    started = time.perf_counter()
    for payload in payloads:
        client.publish(topic, payload, qos=1)
    done.wait(300)
    client.disconnect()
    client.loop_stop()
    return started


@dataclass
class Figures:
    """Ours, measured two ways."""

    catch_up: float  # the broker holds N telegrams; the backend drains them (backend-bound)
    cpu_us: float  # the backend process's CPU time (user + system) per telegram while draining
    live: float  # mosquitto_pub sends N while the backend runs (they share the CPUs)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_online(broker: Mosquitto) -> None:
    """Wait for the backend's retained "online" (it is subscribed then)."""
    probe = Probe(broker)
    probe.subscribe("dsmr/service/backend/state")
    probe.wait_for("dsmr/service/backend/state", where=lambda m: m.text == "online", timeout=30)
    probe.close()


def drain_rate(database: Path, target: int, pid: int) -> tuple[float, float]:
    """Telegrams/s and CPU µs per telegram from the first commit until ``target`` are stored."""
    base = count_rows(database)
    wait_for(lambda: count_rows(database) > base, 60, 0.001, "the first commit")
    first_count, started, cpu = count_rows(database), time.perf_counter(), cpu_seconds(pid)
    wait_for(lambda: count_rows(database) >= target, 600, 0.002, "all telegrams stored")
    done = target - first_count
    rate = done / (time.perf_counter() - started)
    return rate, (cpu_seconds(pid) - cpu) / done * 1e6


def publish_with_mosquitto_pub(broker: Mosquitto, payloads: list[bytes], workdir: Path) -> float:
    """Publish with the C client (one line per envelope): the publisher is not the bottleneck."""
    lines = workdir / "envelopes.txt"
    lines.write_bytes(b"\n".join(payloads) + b"\n")  # envelopes are one-line JSON
    command = [
        shutil.which("mosquitto_pub") or "mosquitto_pub",
        *("-h", broker.host, "-p", str(broker.port), "-q", "1", "-V", "5", "-M", "1000"),
        *("-t", raw_topic(METER), "-l"),
    ]
    started = time.perf_counter()
    with lines.open("rb") as stdin:
        subprocess.run(command, stdin=stdin, check=True, timeout=600)
    return started


def publish(broker: Mosquitto, payloads: list[bytes], workdir: Path) -> float:
    """Publish with mosquitto_pub when installed, else with paho; return the start time."""
    if shutil.which("mosquitto_pub"):
        return publish_with_mosquitto_pub(broker, payloads, workdir)
    return publish_all(broker, payloads)


def bench_ours(count: int, workdir: Path, profile: Path | None = None) -> Figures:
    """Telegrams per second through a real broker and one backend process into SQLite."""
    (workdir / "mosquitto").mkdir()
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    data = workdir / "data"
    env = {**broker.env(), "DSMR_BACKEND_DATA_DIR": str(data), "DSMR_LOG_LEVEL": "WARNING"}
    command = [console_script("dsmr-backend")]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "dsmr_backend"]
    database = data / "dsmr.sqlite3"
    backend = ServiceProcess(command, env)
    try:
        backend.start()
        wait_online(broker)  # the persistent session exists from here on
        publish_all(broker, [envelope(METER, v5_at(-1))])
        wait_for(lambda: count_rows(database) == 1, 30, message="warm-up telegram stored")
        backend.stop()
        # Catch-up: the broker queues N telegrams for the stopped backend's session.
        publish(broker, [envelope(METER, v5_at(i)) for i in range(count)], workdir)
        backend.start()
        assert backend.process is not None
        catch_up, cpu_us = drain_rate(database, count + 1, backend.process.pid)
        # Live: publish N more while it runs.
        payloads = [envelope(METER, v5_at(count + i)) for i in range(count)]
        started = publish(broker, payloads, workdir)
        wait_for(lambda: count_rows(database) == 2 * count + 1, 600, 0.002, "live telegrams")
        live = count / (time.perf_counter() - started)
        return Figures(catch_up, cpu_us, live)
    finally:
        backend.stop()
        backend.close()
        broker.stop()


def main() -> int:
    """Run both and print the figures and their ratio."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--count", type=int, default=20000, help="telegrams through the backend")
    args.add_argument("--reference", type=int, default=3000, help="telegrams for the reference")
    args.add_argument("--profile", type=Path, help="write the backend's cProfile stats here")
    options = args.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        workdir = Path(tmp)
        sample = [v5_at(i) for i in range(options.reference)]
        reference = reference_store(sample, workdir / "reference.sqlite3")
        ours = bench_ours(options.count, workdir, options.profile)
    print(f"cpu count: {os.cpu_count()}")
    print(
        f"reference-style (dsmr_parser + 1 INSERT/COMMIT per telegram, in-process): "
        f"{reference:,.0f} telegrams/s over {options.reference}"
    )
    print(
        f"dsmr-backend catch-up (broker holds {options.count}, one backend process drains "
        f"them into SQLite): {ours.catch_up:,.0f} telegrams/s"
    )
    print(
        f"backend CPU per telegram while draining: {ours.cpu_us:,.0f} µs "
        f"(= {1e6 / ours.cpu_us:,.0f} telegrams/s per fully used core)"
    )
    print(
        f"dsmr-backend live (mosquitto_pub sends {options.count} while it runs): {ours.live:,.0f} telegrams/s"
    )
    print(f"ratio catch-up/reference: {ours.catch_up / reference:.2f}x")
    print(f"target >= 3,000 telegrams/s: {'met' if ours.catch_up >= 3000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
