"""The local stack without Docker: a private mosquitto, the services as processes, a live view.

Run it through ``scripts/run``. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("datalogger", "backend", "pvoutput", "plugins")
POWER = re.compile(rb"1-0:1\.7\.0\((\d+\.\d+)\*kW\)")
STAMP = re.compile(rb"0-0:1\.0\.0\((\d{12})[SW]\)")


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
    """True when the service's package has an entry point yet."""
    return importlib.util.find_spec(f"dsmr_{service}.__main__") is not None


def start_broker(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start a private mosquitto with persistence in ``workdir``."""
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir}/\nmax_queued_messages 100000\n"
        f"log_dest file {workdir}/mosquitto.log\n"
    )
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([binary, "-c", str(config)])
    deadline = time.monotonic() + 10
    while port_free(port):
        if broker.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"mosquitto did not start; see {workdir}/mosquitto.log")
        time.sleep(0.05)
    return broker


def start_service(name: str, env: dict[str, str], logdir: Path) -> subprocess.Popen[bytes]:
    """Start one service; its log goes to ``logdir/<name>.log``."""
    log = (logdir / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", f"dsmr_{name}"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


class LiveView:
    """Prints one line per telegram (and per reading, once the backend publishes them)."""

    def __init__(self, port: int, prefix: str) -> None:
        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dsmr-live-{os.getpid()}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.prefix}/dsmr_datalogger/signals/raw_telegram/+")
        client.subscribe(f"{self.prefix}/json")
        client.subscribe(f"{self.prefix}/service/+/state")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/state"):
            print(f"service {msg.topic.split('/')[-2]:<10} {msg.payload.decode()}", flush=True)
        elif msg.topic.endswith("/json"):
            print(f"reading   {msg.payload.decode()[:160]}", flush=True)
        else:
            self._show_telegram(msg.topic.rsplit("/", 1)[-1], bytes(msg.payload))

    @staticmethod
    def _show_telegram(meter: str, payload: bytes) -> None:
        try:
            data = json.loads(payload)["kwargs"]["data"].encode("latin-1")
        except (ValueError, KeyError, TypeError):
            return
        power = POWER.search(data)
        stamp = STAMP.search(data)
        print(
            f"telegram  {meter}  {stamp.group(1).decode() if stamp else '?':<12}  "
            f"{power.group(1).decode() + ' kW' if power else ''}  ({len(data)} bytes)",
            flush=True,
        )

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def main() -> None:
    """Start the stack and keep it running until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=1883, help="broker port (another if taken)")
    parser.add_argument("--services", default=",".join(SERVICES), help="comma-separated services")
    parser.add_argument("--quiet", action="store_true", help="no live view")
    args = parser.parse_args()
    workdir = ROOT / "var" / "stack"
    workdir.mkdir(parents=True, exist_ok=True)
    port = pick_port(args.port)
    broker = start_broker(workdir, port)
    print(f"mosquitto on 127.0.0.1:{port}; logs in {workdir}", flush=True)
    env = {
        **os.environ,
        "DSMR_MQTT_HOST": "127.0.0.1",
        "DSMR_MQTT_PORT": str(port),
        "DSMR_DATA_DIR": str(workdir),
    }
    env.setdefault("DSMR_DATALOGGER_PORT", "simulate")
    wanted = [s for s in args.services.split(",") if s]
    running = {name: start_service(name, env, workdir) for name in wanted if available(name)}
    print("started: " + ", ".join(running) + " (Ctrl-C stops everything)", flush=True)
    view = None if args.quiet else LiveView(port, env.get("DSMR_TOPIC_PREFIX", "dsmr"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(1):
        for name, proc in running.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; see {workdir}/{name}.log", flush=True)
                stop.set()
    print("stopping...", flush=True)
    for proc in running.values():
        proc.terminate()
    for proc in running.values():
        proc.wait(15)
    if view is not None:
        view.close()
    broker.terminate()
    broker.wait(10)


if __name__ == "__main__":
    main()
