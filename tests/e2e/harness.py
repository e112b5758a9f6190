"""The whole stack as real processes: mosquitto, the four services, a pty meter, a fake PVOutput.

``Stack`` starts and kills services; ``Meter`` turns the simulator into telegrams written into the
pty the datalogger reads; the ``stored_*`` and ``events`` helpers read what each part recorded.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dsmr_datalogger.simulator import SimulatedTelegram, Simulator, SimulatorConfig
from tests.datalogger.feeders import PtyPort
from tests.helpers import Mosquitto, Probe, ServiceProcess, console_script, wait_for
from tests.pvoutput.fake_pvoutput import FakePVOutput

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SERVICES = ("plugins", "backend", "pvoutput", "datalogger")
"""Start order: consumers first, so their persistent sessions exist before the first telegram."""
CONSUMERS = {"plugins": "dsmr-plugins", "backend": "dsmr-backend-backend", "pvoutput": "e2e-pvoutput"}
"""Each consumer's MQTT client id (the broker logs its subscriptions under it)."""
RECORDER = Path(__file__).with_name("e2e_recorder.py")
PLUGIN = "dsmr_plugins.modules.e2e_recorder"
METER = "SIM0000000000001"
STEP = 10
"""Simulated seconds between telegrams: distinct timestamps, a 5-minute interval per 30 telegrams."""

# The shipped broker's persistence and queue settings (services/mosquitto/mosquitto.conf), and a
# log of subscriptions, which tells the harness when a consumer really listens.
BROKER_CONFIG = (
    "autosave_interval 60\nmax_inflight_messages 500\nset_tcp_nodelay true\n"
    "queue_qos0_messages false\nlog_type subscribe\n"
)

_STAMP = re.compile(rb"0-0:1\.0\.0\((\d{12}[SW])\)")
_VALUE = {
    key: re.compile(rb"1-0:" + obis + rb"\((\d+\.\d+)\*kWh?\)")
    for key, obis in (
        ("d1", rb"1\.8\.1"),
        ("d2", rb"1\.8\.2"),
        ("r1", rb"2\.8\.1"),
        ("r2", rb"2\.8\.2"),
        ("cd", rb"1\.7\.0"),
        ("cr", rb"2\.7\.0"),
    )
}
_VALUE["gas"] = re.compile(rb"0-1:24\.2\.1\(\d{12}[SW]\)\((\d+\.\d+)\*m3\)")


def last_local_midnight(now: datetime | None = None) -> datetime:
    """The most recent local midnight (Europe/Amsterdam) as an aware datetime."""
    local = (now or datetime.now(UTC)).astimezone(AMSTERDAM)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def default_start() -> datetime:
    """Half an hour before the last local midnight: a replay crosses a day and closes intervals."""
    midnight = last_local_midnight()
    return (midnight - timedelta(minutes=30)).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Fed:
    """What the harness knows about one telegram it wrote: identity and the values PVOutput uses."""

    at: datetime
    stamp: str
    data: bytes

    def value(self, key: str) -> str:
        """A register or power value without leading zeros (``d1``, ``d2``, ``cd``, ``cr``)."""
        match = _VALUE[key].search(self.data)
        assert match is not None, key
        return str(Decimal(match.group(1).decode()))

    def milli(self, key: str) -> int:
        """A kWh or kW value in Wh or W (exact: the telegram has three decimals)."""
        return int(Decimal(self.value(key)) * 1000)


def fed(telegram: SimulatedTelegram) -> Fed:
    """Describe a simulated telegram."""
    match = _STAMP.search(telegram.data)
    assert match is not None
    return Fed(telegram.at, match.group(1).decode(), telegram.data)


class Meter:
    """The simulated meter behind a pty: ``send`` writes one telegram, ``inject`` raw bytes."""

    def __init__(self, start: datetime, step: int = STEP) -> None:
        self.pty = PtyPort()
        self.simulator = Simulator(SimulatorConfig(start=start, interval=step))
        self.sent: list[Fed] = []
        self._lock = threading.Lock()

    def next(self) -> Fed:
        """The next telegram, not yet written."""
        return fed(self.simulator.step())

    def send(self, telegram: Fed | None = None) -> Fed:
        """Write a (good) telegram into the port and remember it."""
        item = telegram or self.next()
        with self._lock:
            self.pty.write(item.data)
            self.sent.append(item)
        return item

    def inject(self, data: bytes) -> None:
        """Write bytes that are not a good telegram (noise, a cut-off or corrupted one)."""
        with self._lock:
            self.pty.write(data)


@dataclass
class Stack:
    """Every part of a full stack for one test, with its files under ``root``."""

    root: Path
    broker: Mosquitto
    meter: Meter
    pvoutput: FakePVOutput
    probe: Probe | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per service, settings on top of the harness's (set before ``start_all``)."""

    @property
    def record_file(self) -> Path:
        """Where the recorder plugin writes its events."""
        return self.root / "events.jsonl"

    @property
    def database(self) -> Path:
        """The backend's SQLite file."""
        return self.root / "backend" / "dsmr.sqlite3"

    def env(self, service: str) -> dict[str, str]:
        """The environment of one service."""
        base = {**self.broker.env(), "DSMR_LOG_LEVEL": "INFO"}
        return {**base, **_SERVICE_ENV[service](self), **self.extra_env.get(service, {})}

    def start(self, service: str) -> ServiceProcess:
        """Start (or restart) one service as its console script."""
        process = self.processes.get(service)
        if process is None:
            workdir = self.root / service
            workdir.mkdir(exist_ok=True)
            process = ServiceProcess([console_script(f"dsmr-{service}")], self.env(service), cwd=workdir)
            self.processes[service] = process
        return process.start()

    def start_all(self) -> None:
        """Start every service and wait until each consumer's subscriptions are in place."""
        modules = self.root / "modules"
        modules.mkdir(exist_ok=True)
        shutil.copy(RECORDER, modules / RECORDER.name)
        for service in SERVICES:
            self.start(service)
        for service in CONSUMERS:
            self.wait_subscribed(service)
        assert self.probe is not None
        for service in SERVICES:
            self.probe.wait_for(f"dsmr/service/{service}/state", where=_online, timeout=20)

    def wait_subscribed(self, service: str, after: int = 0, timeout: float = 20.0) -> None:
        """Wait until the broker logged a subscription of ``service``'s client (after log offset)."""
        needle = f" {CONSUMERS[service]} "

        def subscribed() -> bool:
            log = self.broker.log_path.read_text(errors="replace")[after:]
            return any(
                (needle in line and "/signals/" in line) or (needle in line and "/json" in line)
                for line in log.splitlines()
            )

        wait_for(subscribed, timeout, message=f"{service} subscribed\n{self.outputs()}")

    def broker_log_size(self) -> int:
        """The broker log's current length (to wait for later lines only)."""
        return len(self.broker.log_path.read_text(errors="replace"))

    def kill(self, service: str) -> None:
        """SIGKILL a service, as a crash or a power cut would."""
        self.processes[service].kill()

    def close(self) -> None:
        """Stop everything (SIGTERM first, so the services leave their logs complete)."""
        for process in self.processes.values():
            if process.process is not None and process.process.poll() is None:
                process.stop(timeout=15)
            process.close()
        if self.probe is not None:
            self.probe.close()
        self.pvoutput.stop()
        self.meter.pty.close()

    def outputs(self) -> str:
        """Every service's output, for a failing assertion's message."""
        return "\n".join(f"--- {name}\n{p.output()[-4000:]}" for name, p in self.processes.items())


def _online(message: Any) -> bool:
    return bool(message.payload == b"online")


def _datalogger_env(stack: Stack) -> dict[str, str]:
    return {
        "DSMR_DATALOGGER_PORT": stack.meter.pty.path,
        "DSMR_DATALOGGER_SPOOL_PATH": str(stack.root / "datalogger" / "spool.sqlite3"),
        "DSMR_DATALOGGER_STATS_SECONDS": "0.5",
    }


def _backend_env(stack: Stack) -> dict[str, str]:
    return {
        "DSMR_BACKEND_DATA_DIR": str(stack.root / "backend"),
        "DSMR_BACKEND_POST_SAVE": "all",
        "DSMR_BACKEND_HA_DISCOVERY": "false",
        "DSMR_BACKEND_LOOP_INTERVAL": "0.5",
    }


def _pvoutput_env(stack: Stack) -> dict[str, str]:
    return {
        "DSMR_MQTT_CLIENT_ID": CONSUMERS["pvoutput"],
        "DSMR_PVOUTPUT_API_URL": stack.pvoutput.url,
        "DSMR_PVOUTPUT_API_KEY": stack.pvoutput.api_key,
        "DSMR_PVOUTPUT_SYSTEM_ID": stack.pvoutput.system_id,
        "DSMR_PVOUTPUT_OUTBOX": str(stack.root / "pvoutput" / "outbox.sqlite3"),
        "DSMR_PVOUTPUT_BACKLOG_GAP": "0",
        "DSMR_PVOUTPUT_RETRY_INITIAL": "0.2",
        "DSMR_PVOUTPUT_RETRY_MAX": "1",
    }


def _plugins_env(stack: Stack) -> dict[str, str]:
    return {
        "DSMR_MQTT_CLIENT_ID": CONSUMERS["plugins"],
        "DSMRREADER_PLUGINS": PLUGIN,
        "DSMR_PLUGINS_DIR": str(stack.root / "modules"),
        "DSMR_E2E_RECORD_FILE": str(stack.record_file),
    }


_SERVICE_ENV = {
    "datalogger": _datalogger_env,
    "backend": _backend_env,
    "pvoutput": _pvoutput_env,
    "plugins": _plugins_env,
}


# -- what the parts recorded -------------------------------------------------------------------------


def stored_readings(database: Path) -> list[datetime]:
    """Every stored reading's timestamp (UTC), in insertion order; duplicates would show."""
    if not database.exists():
        return []
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT timestamp FROM readings ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the backend has not created its tables yet
        return []
    return [datetime.fromisoformat(row[0]).replace(tzinfo=UTC) for row in rows]


def table_rows(database: Path, table: str) -> int:
    """How many rows the backend's ``table`` holds (0 while it does not exist)."""
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def events(record_file: Path, signal: str | None = None, sender: str | None = None) -> list[dict[str, Any]]:
    """The recorder plugin's events, in the order it handled them."""
    if not record_file.exists():
        return []
    lines = record_file.read_text().splitlines()
    found = (json.loads(line) for line in lines if line)
    return [
        e
        for e in found
        if (signal is None or e["signal"] == signal) and (sender is None or e["sender"] == sender)
    ]


def keys(record_file: Path, signal: str, sender: str | None = None) -> list[str]:
    """The keys of one kind of event, in order."""
    return [e["key"] for e in events(record_file, signal, sender)]


def reading_key(at: datetime) -> str:
    """A DsmrReading post_save's key for a telegram of time ``at`` (ISO 8601 UTC)."""
    return at.astimezone(UTC).isoformat()


# -- what PVOutput should have ------------------------------------------------------------------------


def interval_end(at: datetime, minutes: int = 5) -> datetime:
    """The end of the clock-aligned interval ``(end - minutes, end]`` holding ``at``."""
    seconds = minutes * 60
    epoch = int(at.timestamp())
    end = epoch if epoch % seconds == 0 else epoch - epoch % seconds + seconds
    return datetime.fromtimestamp(end, UTC)


def expected_statuses(readings: list[Fed], minutes: int = 5) -> dict[tuple[str, str], dict[str, str]]:
    """Each closed interval's status as docs/pvoutput.md defines it: v3 Wh since midnight, v4 net W."""
    statuses = {}
    for end in sorted({interval_end(r.at, minutes) for r in readings}):
        if not any(r.at >= end for r in readings):
            continue  # still open
        last = max((r for r in readings if r.at <= end), key=lambda r: r.at)
        local = end.astimezone(AMSTERDAM)
        baseline = _day_baseline(readings, local)
        v3 = last.milli("d1") + last.milli("d2") - baseline.milli("d1") - baseline.milli("d2")
        v4 = last.milli("cd") - last.milli("cr")
        key = (local.strftime("%Y%m%d"), local.strftime("%H:%M"))
        statuses[key] = {"v3": str(v3), "v4": str(v4)}
    return statuses


def _day_baseline(readings: list[Fed], local_end: datetime) -> Fed:
    midnight = local_end.replace(hour=0, minute=0, second=0, microsecond=0)
    return min((r for r in readings if r.at >= midnight), key=lambda r: r.at)


def expected_day(readings: list[Fed], day_start: datetime) -> dict[str, Decimal]:
    """DayStatistics of the local day starting at ``day_start``, boundary to boundary (docs/statistics.md).

    Each register's value at the first reading at or after the day's start, subtracted from its
    value at the first reading at or after the next day's start. Gas from the same two telegrams is
    right here: the simulator stamps its gas value on the five-minute boundaries the readings hit.
    """
    next_start = (day_start + timedelta(days=1, hours=2)).replace(hour=0)
    first = min((r for r in readings if r.at >= day_start), key=lambda r: r.at)
    last = min((r for r in readings if r.at >= next_start), key=lambda r: r.at)
    names = {"d1": "electricity1", "d2": "electricity2", "r1": "electricity1_returned"}
    names |= {"r2": "electricity2_returned", "gas": "gas"}
    return {name: Decimal(last.value(key)) - Decimal(first.value(key)) for key, name in names.items()}


def accepted_statuses(server: FakePVOutput) -> dict[tuple[str, str], dict[str, str]]:
    """What the fake PVOutput accepted, as ``{(d, t): {"v3", "v4"}}``."""
    return {key: {"v3": form["v3"], "v4": form["v4"]} for key, form in server.statuses().items()}


class KillableMosquitto(Mosquitto):
    """The fixture's broker, plus a SIGKILL (no chance to save its persistence file)."""

    def kill(self) -> None:
        """SIGKILL the broker and wait until it is gone."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)
        self._process = None


def corrupted(telegram: Fed) -> bytes:
    """The telegram with one digit of its body changed: framing fine, CRC wrong."""
    data = bytearray(telegram.data)
    spot = data.index(b"1-0:1.7.0(") + 10
    data[spot] = ord("9") if data[spot] != ord("9") else ord("8")
    return bytes(data)
