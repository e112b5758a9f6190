"""What the benchmarks share: a private mosquitto to measure through."""

import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A private mosquitto with room for bursts; returns the process and its port."""
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n")
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    broker = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return broker, port
        time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def reference_store(telegrams: list[str], database: Path) -> float:
    """The reference: dsmr_parser parse + one SQLite INSERT and COMMIT per telegram; telegrams/s."""
    from dsmr_parser import telegram_specifications  # noqa: PLC0415 - dev-only reference
    from dsmr_parser.parsers import TelegramParser  # noqa: PLC0415

    parser = TelegramParser(telegram_specifications.V5, apply_checksum_validation=True)
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE reading (id INTEGER PRIMARY KEY, timestamp TEXT UNIQUE, d1 NUMERIC, "
        "d2 NUMERIC, r1 NUMERIC, r2 NUMERIC, cd NUMERIC, cr NUMERIC, gas NUMERIC, gas_ts TEXT)"
    )
    started = time.perf_counter()
    for text in telegrams:
        t = parser.parse(text)
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
