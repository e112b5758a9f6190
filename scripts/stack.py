"""The local stack without Docker: a private mosquitto, the four services as processes, a live view.

Run it through ``scripts/run``. Files (broker persistence, SQLite database, spool, outbox, logs)
go to ``var/stack/``. Ctrl-C stops the services first, then the broker.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("plugins", "backend", "pvoutput", "datalogger")
"""Start order: consumers first, so they listen before the first telegram."""
STOP_SECONDS = 8.0
"""How long the services get to stop before they are killed."""


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def pick_port(wanted: int) -> int:
    """``wanted`` when free, else any free port."""
    if port_free(wanted):
        return wanted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available(service: str) -> bool:
    """True when the service's package has an entry point."""
    return importlib.util.find_spec(f"dsmr_{service}.__main__") is not None


def start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start a private mosquitto with persistence in ``workdir``."""
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nautosave_interval 60\nmax_queued_messages 500000\n"
        f"max_inflight_messages 500\nset_tcp_nodelay true\nlog_dest file {workdir}/mosquitto.log\n"
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen(  # it logs to its file; its stderr only says "running as root"
        [binary, "-c", str(config)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while port_free(port):
        if broker.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"mosquitto did not start; see {workdir}/mosquitto.log")
        time.sleep(0.05)
    return broker


def service_env(name: str, base: dict[str, str], workdir: Path) -> dict[str, str]:
    """The environment of one service: its files under ``workdir`` unless the environment says
    otherwise. The datalogger's port is left alone: its default is the simulator, and a
    DSMR_DATALOGGER_PORT from the environment or a .env file must win."""
    defaults = {
        "datalogger": {"DSMR_DATALOGGER_SPOOL_PATH": str(workdir / "datalogger-spool.sqlite3")},
        "backend": {"DSMR_BACKEND_DATA_DIR": str(workdir)},
        "pvoutput": {"DSMR_PVOUTPUT_OUTBOX": str(workdir / "pvoutput-outbox.sqlite3")},
        "plugins": {},
    }[name]
    return {**defaults, **base}


def start_service(name: str, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """Start one service in its own process group (the working directory stays, for .env);
    its log goes to ``<workdir>/<name>.log``."""
    log = (workdir / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", f"dsmr_{name}"],
        env=service_env(name, env, workdir),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches this script only; it stops them in order
    )


COLUMNS = (
    ("power in kW", "electricity_currently_delivered", 13),
    ("out kW", "electricity_currently_returned", 8),
    ("used T1 kWh", "electricity_delivered_1", 13),
    ("used T2 kWh", "electricity_delivered_2", 13),
    ("back T1 kWh", "electricity_returned_1", 13),
    ("back T2 kWh", "electricity_returned_2", 13),
    ("gas m3", "extra_device_delivered", 11),
)
"""The live view's columns: heading, dsmr/json key, width (one table drives header and rows)."""

HEADER = "time    " + "".join(f"{title:>{width}}" for title, _, width in COLUMNS) + "  meter"


def number(value: Any, width: int) -> str:
    """A right-aligned number with three decimals, or a dash when the reading lacks it."""
    return f"{value:>{width}.3f}" if isinstance(value, int | float) else "-".rjust(width)


def reading_line(doc: dict[str, Any]) -> str:
    """One terminal line for one reading of dsmr/json (its time in this computer's time zone)."""
    try:
        at = datetime.fromisoformat(doc["timestamp"]).astimezone().strftime("%H:%M:%S")
    except (KeyError, TypeError, ValueError):
        at = "--:--:--"
    values = "".join(number(doc.get(key), width) for _, key, width in COLUMNS)
    return f"{at}{values}  {doc.get('meter', '')}"


class LiveView:
    """Prints one line per reading (from dsmr/json) and each service's online/offline."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.readings = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dsmr-live-{os.getpid()}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.prefix}/json")
        client.subscribe(f"{self.prefix}/service/+/state")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/state"):
            state = msg.payload.decode(errors="replace")
            if msg.retain and state == "offline":
                return  # left over from the last run: every service is starting anyway
            self.say(f"{'':8}  service {msg.topic.split('/')[-2]} is {state}")
            return
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        if self.readings % 20 == 0:
            self.say(HEADER)
        self.readings += 1
        self.say(reading_line(doc))

    def say(self, line: str) -> None:
        """Print one line (the MQTT thread and the main thread both print)."""
        with self._lock:
            print(line, flush=True)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def stop_all(running: dict[str, subprocess.Popen[bytes]], say: Any) -> None:
    """SIGTERM every service at once, wait up to STOP_SECONDS, kill what is left."""
    for proc in running.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for name, proc in running.items():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop within {STOP_SECONDS:.0f} s; killed")
            proc.kill()
            proc.wait()


def watch(running: dict[str, subprocess.Popen[bytes]], stop: threading.Event, workdir: Path) -> None:
    """Wait for Ctrl-C; a service that exits on its own stops the stack."""
    while not stop.wait(0.5):
        for name, proc in running.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see {workdir}/{name}.log", flush=True)
                stop.set()


def main() -> None:
    """Start the stack and keep it running until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=1883, help="broker port (another if taken)")
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated services")
    parser.add_argument("--quiet", action="store_true", help="no live view")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "stack", help="where files go")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(args.port)
    broker = start_broker(workdir, port)
    env = {**os.environ, "DSMR_MQTT_HOST": "127.0.0.1", "DSMR_MQTT_PORT": str(port)}
    source = env.get("DSMR_DATALOGGER_PORT") or "the simulated meter (unless .env sets a port)"
    print(f"mosquitto on 127.0.0.1:{port}; telegrams from {source}", flush=True)
    print(f"data and logs in {workdir}; Ctrl-C stops everything", flush=True)
    view = None if args.quiet else LiveView(port, env.get("DSMR_TOPIC_PREFIX", "dsmr"))
    wanted = [s for s in args.services.split(",") if s]
    running = {name: start_service(name, env, workdir) for name in wanted if available(name)}
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watch(running, stop, workdir)
    print("\nstopping the services...", flush=True)
    stop_all(running, lambda line: print(line, flush=True))
    if view is not None:
        view.close()
    broker.terminate()
    broker.wait(10)
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
