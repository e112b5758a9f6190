"""dsmr-datalogger as a real subprocess: pty and TCP ports, a real mosquitto, signals and outages."""

import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsmr_datalogger import signals as datalogger_signals
from dsmr_datalogger.simulator import Simulator, SimulatorConfig
from dsmr_shared.bus import Bus
from dsmr_shared.envelope import Envelope
from dsmr_shared.settings import ServiceSettings
from dsmr_shared.signals import use_bus
from tests.datalogger.conftest import DataloggerFactory
from tests.datalogger.feeders import PtyPort, TcpFeeder
from tests.datalogger.telegram_text import real_telegrams
from tests.helpers import Mosquitto, Probe, Received, wait_for

RAW = "dsmr/dsmr_datalogger/signals/raw_telegram/+"
STATE = "dsmr/service/datalogger/state"
STATS = "dsmr/service/datalogger/stats"
V5 = next(t for t in real_telegrams() if t.name == "v5").raw


def envelopes(messages: list[Received]) -> list[Envelope]:
    """Parse every raw_telegram message (each must be a valid envelope)."""
    return [Envelope.parse(m.payload) for m in messages]


def spooled(tmp_path: Path) -> int:
    """Telegrams waiting in the datalogger's spool file."""
    with sqlite3.connect(tmp_path / "spool.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])


def simulated(count: int) -> Iterator[bytes]:
    """``count`` distinct simulated telegrams."""
    simulator = Simulator(SimulatorConfig(start=datetime(2026, 11, 25, 12, tzinfo=UTC)))
    return (simulator.step().data for _ in range(count))


def feed(pty: PtyPort, telegrams: Iterator[bytes], per_second: float) -> list[bytes]:
    """Write telegrams on a meter's clock (``per_second`` of them each wall second)."""
    sent = []
    next_due = time.monotonic()
    for telegram in telegrams:
        time.sleep(max(0.0, next_due - time.monotonic()))  # the meter's clock, not a settle-wait
        pty.write(telegram)
        sent.append(telegram)
        next_due += 1 / per_second
    return sent


def test_every_real_telegram_from_a_pty_is_published_byte_exact(
    mqtt_client: Callable[..., Probe], datalogger: DataloggerFactory
) -> None:
    probe = mqtt_client()
    probe.subscribe(RAW)
    pty = PtyPort()
    try:
        process = datalogger(datalogger_port=pty.path)
        process.wait_for_output(f"port {pty.path} opened")
        kit = real_telegrams()
        for telegram in kit:
            pty.write(telegram.raw)
        received = envelopes(probe.wait_for(RAW, count=len(kit), timeout=20))
    finally:
        pty.close()
    assert [e.kwargs["data"] for e in received] == [t.framed.decode("latin-1") for t in kit]
    assert sum(t.framed == t.raw for t in kit) == len(kit) - 2  # two carry junk after the CRC
    assert all(e.signal == "dsmr_datalogger.signals.raw_telegram" for e in received)
    assert len({e.id for e in received}) == len(kit)
    by_name = {t.name: e for t, e in zip(kit, received, strict=True)}
    assert by_name["v5"].sender == "K8EG004046395507"  # hex-decoded equipment id
    assert by_name["sagemcom_t210_d_r"].sender == "meter"  # no equipment id at all
    topics = [m.topic for m in probe.received(RAW)]
    assert all(t.endswith("/" + e.sender) for t, e in zip(topics, received, strict=True))


def test_noise_and_bad_crcs_over_tcp_are_rejected_counted_and_not_published(
    mosquitto: Mosquitto, mqtt_client: Callable[..., Probe], datalogger: DataloggerFactory
) -> None:
    # A receiver in this process, connected the way a backend connects to raw_telegram.
    heard: list[dict[str, Any]] = []
    bus = Bus(ServiceSettings(mqtt_host=mosquitto.host, mqtt_port=mosquitto.port).mqtt_config(), "test")
    use_bus(bus)
    datalogger_signals.raw_telegram.connect(lambda **kw: heard.append(kw), sender="house")
    bus.start()
    assert bus.wait_connected(10)
    probe = mqtt_client()
    probe.subscribe(STATS)
    feeder = TcpFeeder()
    feeder.listen()
    try:
        process = datalogger(datalogger_port=feeder.url, datalogger_meter="house")
        feeder.accept()
        process.wait_for_output(f"port {feeder.url} opened")
        bad_crc = V5.replace(b"!6EEE", b"!6EEF")
        feeder.send(b"\x00\xffnoise" * 20 + bad_crc + V5[:400] + V5 + b"#" * 17 + V5)
        wait_for(lambda: len(heard) == 2, message="the two good telegrams")
    finally:
        feeder.close()
        bus.close()

    def counted(m: Received) -> bool:
        stats = json.loads(m.payload)
        return bool(stats["rejected_crc"] == 1 and stats["telegrams"] == 2)

    stats = json.loads(probe.wait_for(STATS, where=counted)[-1].payload)
    assert stats["rejected"] == 2
    assert stats["rejected_framing"] == 1
    assert stats["noise_bytes"] >= 7 * 20 + 17
    assert [h["data"] for h in heard] == [V5.decode("latin-1")] * 2
    assert {h["sender"] for h in heard} == {"house"}
    output = process.output()
    assert "rejected a telegram (crc): CRC mismatch: telegram says 6EEF, computed 6EEE" in output
    assert "rejected a telegram (framing): truncated" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_a_broker_outage_loses_nothing_and_duplicates_nothing(
    mosquitto: Mosquitto,
    mqtt_client: Callable[..., Probe],
    datalogger: DataloggerFactory,
    tmp_path: Path,
) -> None:
    """The broker is away for 30 s of telegrams at a DSMR 5 meter's one per second."""
    probe = mqtt_client(client_id="outage-probe", persistent=True)
    probe.subscribe(RAW)
    pty = PtyPort()
    try:
        process = datalogger(datalogger_port=pty.path, datalogger_meter="house")
        process.wait_for_output(f"port {pty.path} opened")
        telegrams = simulated(40)
        sent = feed(pty, (next(telegrams) for _ in range(5)), per_second=2)
        probe.wait_for(RAW, count=5)

        mosquitto.stop()
        process.wait_for_output("lost the broker")
        sent += feed(pty, (next(telegrams) for _ in range(30)), per_second=1)
        wait_for(lambda: spooled(tmp_path) == 30, message="30 telegrams on disk")
        mosquitto.start()
        sent += feed(pty, telegrams, per_second=1)
        wait_for(lambda: len(probe.received(RAW)) >= 40, timeout=45, message="all 40 telegrams")
        wait_for(lambda: spooled(tmp_path) == 0, message="an empty spool")
    finally:
        pty.close()
    received = envelopes(probe.received(RAW))
    assert [e.kwargs["data"] for e in received] == [t.decode("latin-1") for t in sent]
    assert len({e.id for e in received}) == len(sent)


def test_sigterm_flushes_and_publishes_offline_retained(
    mqtt_client: Callable[..., Probe], datalogger: DataloggerFactory, tmp_path: Path
) -> None:
    probe = mqtt_client()
    probe.subscribe(STATE)
    probe.subscribe(RAW)
    process = datalogger(datalogger_port="simulate", datalogger_simulate_speed="20")
    probe.wait_for(STATE, where=lambda m: m.text == "online")
    probe.wait_for(RAW, count=5)
    assert process.stop(signal.SIGTERM) == 0
    late = mqtt_client()
    late.subscribe(STATE)
    state = late.wait_for(STATE)[-1]
    assert (state.text, state.retain) == ("offline", True)
    assert spooled(tmp_path) == 0
    assert "SIGTERM received" in process.output() and "stopped" in process.output()


def test_a_replayed_capture_is_published_in_order_and_the_process_exits(
    mqtt_client: Callable[..., Probe], datalogger: DataloggerFactory, tmp_path: Path
) -> None:
    probe = mqtt_client()
    probe.subscribe(RAW)
    telegrams = [t.raw for t in real_telegrams() if t.framed == t.raw] + list(simulated(300))
    capture = tmp_path / "capture.txt"
    capture.write_bytes(b"".join(telegrams))
    process = datalogger(datalogger_port=f"file:{capture}", datalogger_replay_speed="0")
    assert process.process is not None
    assert process.process.wait(30) == 0
    received = envelopes(probe.wait_for(RAW, count=len(telegrams)))
    assert [e.kwargs["data"].encode("latin-1") for e in received] == telegrams


def test_telegrams_spooled_while_the_broker_is_down_survive_a_restart(
    mosquitto: Mosquitto,
    mqtt_client: Callable[..., Probe],
    datalogger: DataloggerFactory,
    tmp_path: Path,
) -> None:
    mosquitto.stop()
    capture = tmp_path / "capture.txt"
    capture.write_bytes(b"".join(simulated(5)))
    first = datalogger(
        datalogger_port=f"file:{capture}",
        datalogger_replay_speed="0",
        datalogger_flush_seconds="0.2",
    )
    first.wait_for_output("replay finished")
    assert first.stop(signal.SIGTERM) == 0
    assert spooled(tmp_path) == 5

    mosquitto.start()
    probe = mqtt_client()
    probe.subscribe(RAW)
    second = datalogger(datalogger_port=str(tmp_path / "no-such-port"))
    received = envelopes(probe.wait_for(RAW, count=5))
    assert [e.kwargs["data"].encode() for e in received] == list(simulated(5))
    second.wait_for_output("cannot open port")
    assert second.stop(signal.SIGTERM) == 0
    assert "Traceback" not in second.output()


def test_the_publisher_never_blocks_the_reader(
    mosquitto: Mosquitto, datalogger: DataloggerFactory, tmp_path: Path
) -> None:
    """With no broker at all, a fast simulator still fills the spool (bounded, oldest dropped)."""
    mosquitto.stop()
    process = datalogger(
        datalogger_port="simulate",
        datalogger_simulate_speed="0",
        datalogger_spool_max_mb="0.05",
        datalogger_flush_seconds="0.2",
    )
    process.wait_for_output("spool full")
    output = process.wait_for_output("dropped so far")
    assert "oldest" in output
    assert process.stop(signal.SIGTERM) == 0
    assert 0 < spooled(tmp_path) <= 60


def test_the_running_datalogger_never_loads_pydantic(
    mqtt_client: Callable[..., Probe], datalogger: DataloggerFactory
) -> None:
    """Settings are validated in a child process; the service itself stays within its memory budget."""
    probe = mqtt_client()
    probe.subscribe(RAW)
    process = datalogger(datalogger_port="simulate", datalogger_simulate_speed="0")
    probe.wait_for(RAW, count=5, timeout=20)
    assert process.process is not None
    maps = Path(f"/proc/{process.process.pid}/maps").read_text()
    assert "pydantic_core" not in maps, "pydantic loaded in the running datalogger"
    assert "_ssl" in maps  # the check reads the right process: paho's ssl is there
