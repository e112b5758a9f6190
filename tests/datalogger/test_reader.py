"""The read loop on real ports: a pty pair, a TCP server, a capture file, the simulator."""

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmr_datalogger.ports import EndOfInput, FileReplay, PortOpener
from dsmr_datalogger.reader import Reader
from dsmr_datalogger.settings import DataloggerSettings
from dsmr_shared.counters import Counters
from dsmr_shared.framing import Frame
from tests.datalogger.feeders import PtyPort, TcpFeeder
from tests.datalogger.telegram_text import crc_ok, real_telegrams
from tests.helpers import wait_for

V5 = next(t for t in real_telegrams() if t.name == "v5").raw


class RunningReader:
    """A Reader on its own thread, collecting frames."""

    def __init__(self, port: str, **settings: object) -> None:
        self.frames: list[Frame] = []
        self.counters = Counters()
        self.stop = threading.Event()
        config = DataloggerSettings(datalogger_port=port, **settings)
        self.reader = Reader(
            PortOpener(config.config().port),
            self.frames.append,
            self.counters,
            self.stop,
            watchdog_seconds=config.datalogger_watchdog_seconds,
            retry_seconds=config.datalogger_retry_seconds,
        )
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.reader.run()))
        self.thread.start()

    def good(self) -> list[bytes]:
        """The telegrams that passed so far."""
        return [f.data for f in self.frames if f.ok]

    def wait_count(self, name: str, at_least: int) -> None:
        """Wait until counter ``name`` reaches ``at_least``."""
        wait_for(lambda: self.counters.get(name) >= at_least, message=f"{name} >= {at_least}")

    def close(self) -> None:
        """Stop and join."""
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def readers() -> Iterator[list[RunningReader]]:
    started: list[RunningReader] = []
    yield started
    for reader in started:
        reader.close()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    """True when no log record carries a traceback."""
    return all(r.exc_info is None for r in caplog.records)


def test_a_pty_delivers_telegrams_in_any_chunking(readers: list[RunningReader]) -> None:
    pty = PtyPort()
    try:
        readers.append(reader := RunningReader(pty.path))
        reader.wait_count("port_opens", 1)
        for telegram in real_telegrams():
            pty.write(b"\x00noise\r\n" + telegram.raw)
        wait_for(lambda: len(reader.good()) == len(real_telegrams()), message="all telegrams")
        assert reader.good() == [t.framed for t in real_telegrams()]
    finally:
        pty.close()


def test_the_watchdog_reopens_a_pty_that_went_quiet(
    readers: list[RunningReader], caplog: pytest.LogCaptureFixture
) -> None:
    pty = PtyPort()
    try:
        readers.append(reader := RunningReader(pty.path, datalogger_watchdog_seconds=1.0))
        reader.wait_count("port_opens", 1)
        pty.write(V5)
        wait_for(lambda: len(reader.good()) == 1, message="first telegram")
        reader.wait_count("watchdog_reopens", 1)
        reader.wait_count("port_opens", 2)
        pty.write(V5)  # the reopened port still reads
        wait_for(lambda: len(reader.good()) == 2, message="telegram after the reopen")
        assert any("watchdog: no telegram" in r.getMessage() for r in caplog.records)
    finally:
        pty.close()


def test_a_vanished_usb_port_is_retried_until_it_is_back(
    tmp_path: Path, readers: list[RunningReader], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    link = tmp_path / "ttyUSB-P1"  # like /dev/serial/by-id/...: the name survives a replug
    first = PtyPort()
    link.symlink_to(first.path)
    readers.append(reader := RunningReader(str(link), datalogger_retry_seconds=0.05))
    reader.wait_count("port_opens", 1)
    first.write(V5)
    wait_for(lambda: len(reader.good()) == 1, message="telegram before the unplug")

    first.close()  # unplugged
    link.unlink()
    reader.wait_count("port_errors", 1)
    reader.wait_count("port_open_failures", 5)
    second = PtyPort()  # plugged in again
    try:
        link.symlink_to(second.path)
        reader.wait_count("port_opens", 2)
        second.write(V5)
        wait_for(lambda: len(reader.good()) == 2, message="telegram after the replug")
    finally:
        second.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"port {link} lost" in m for m in messages)
    retries = [m for m in messages if m.startswith(f"cannot open port {link}")]
    assert 1 <= len(retries) < reader.counters.get("port_open_failures"), "one line, not one per try"
    assert any("opened after" in m for m in messages)
    assert no_tracebacks(caplog)


def test_a_socket_url_that_refuses_is_retried_and_a_dropped_connection_reopened(
    readers: list[RunningReader], caplog: pytest.LogCaptureFixture
) -> None:
    feeder = TcpFeeder()
    readers.append(reader := RunningReader(feeder.url, datalogger_retry_seconds=0.05))
    try:
        reader.wait_count("port_open_failures", 2)  # nothing listens yet
        feeder.listen()
        feeder.accept()
        reader.wait_count("port_opens", 1)
        feeder.send(V5[:100])
        feeder.send(V5[100:])
        wait_for(lambda: len(reader.good()) == 1, message="telegram over TCP")
        feeder.drop()  # the dongle rebooted
        feeder.accept()
        reader.wait_count("port_opens", 2)
        feeder.send(V5)
        wait_for(lambda: len(reader.good()) == 2, message="telegram after reconnecting")
    finally:
        feeder.close()
    assert reader.counters.get("port_opens") == 2
    assert any("Connection refused" in r.getMessage() for r in caplog.records)
    assert no_tracebacks(caplog)


def test_noise_bad_crcs_and_cut_telegrams_are_rejected_and_counted(
    readers: list[RunningReader],
) -> None:
    feeder = TcpFeeder()
    feeder.listen()
    readers.append(reader := RunningReader(feeder.url))
    try:
        feeder.accept()
        reader.wait_count("port_opens", 1)  # pyserial empties the socket right after connecting
        bad_crc = V5.replace(b"!6EEE", b"!6EEF")
        feeder.send(b"garbage" * 10 + bad_crc + V5[:300] + V5 + b"\xff\xfe")
        wait_for(lambda: len(reader.frames) == 3, message="three frames")
    finally:
        feeder.close()
    assert reader.good() == [V5]
    assert [f.error is not None for f in reader.frames] == [True, True, False]
    assert reader.counters.get("noise_bytes") >= 70


def test_a_capture_file_replays_to_its_end(tmp_path: Path, readers: list[RunningReader]) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_bytes(b"".join(t.raw for t in real_telegrams()))
    readers.append(reader := RunningReader(f"file:{capture}", datalogger_replay_speed=0))
    reader.thread.join(10)
    assert reader.result == [True], "run() reports the end of the replay"
    assert reader.good() == [t.framed for t in real_telegrams()]


def test_file_replay_hands_out_the_whole_file_in_telegram_pieces(tmp_path: Path) -> None:
    capture = tmp_path / "capture.txt"
    content = b"junk\r\n" + b"".join(t.raw for t in real_telegrams())
    capture.write_bytes(content)
    replay = FileReplay(capture, speed=0)
    pieces: list[bytes] = []
    with pytest.raises(EndOfInput):
        while True:
            pieces.append(replay.read())
    assert b"".join(pieces) == content
    assert sum(p.startswith(b"/") for p in pieces) == len(real_telegrams())


def test_the_simulator_as_a_port(readers: list[RunningReader]) -> None:
    readers.append(reader := RunningReader("simulate", datalogger_simulate_speed=0))
    wait_for(lambda: len(reader.good()) >= 100, message="100 simulated telegrams")
    assert all(crc_ok(t) for t in reader.good()[:100])
    assert reader.counters.get("rejected") == 0
