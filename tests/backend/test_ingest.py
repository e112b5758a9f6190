"""The ingest pipeline on a real SQLite file: ack after commit, rejections, retries, coalescing."""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from dsmr_backend.decode import Incoming
from dsmr_backend.ingest import Batch, Ingest
from dsmr_backend.parser import parse
from dsmr_backend.reading import Reading
from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.store import ReadingStore
from dsmr_shared.counters import Counters
from tests.backend.telegrams import (
    envelope,
    raw_topic,
    real_telegrams,
    v5,
    v5_at,
    v5_utc,
    with_crc,
)
from tests.helpers import wait_for


class Acks:
    """Records acks, and whether the acked reading was already committed at that moment."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.acked: list[str] = []
        self.committed_at_ack: list[int] = []
        self.lock = threading.Lock()

    def make(self, name: str) -> Incoming:
        return self.incoming(name, envelope("m1", v5_at(int(name))))

    def incoming(self, name: str, payload: bytes, topic: str | None = None) -> Incoming:
        def ack() -> None:
            with sqlite3.connect(self.database) as conn:
                rows = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
            with self.lock:
                self.acked.append(name)
                self.committed_at_ack.append(rows)

        return Incoming(topic or raw_topic("m1"), payload, False, ack)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "dsmr.sqlite3"


@pytest.fixture
def store(database: Path) -> Iterator[ReadingStore]:
    reading_store = ReadingStore(make_engine(f"sqlite:///{database}", busy_timeout_ms=50))
    reading_store.migrate()
    yield reading_store
    reading_store.engine.dispose()


def make_ingest(store: ReadingStore, batches: list[Batch], **kwargs: object) -> Ingest:
    return Ingest(store, batches.append, counters=Counters(), **kwargs)  # type: ignore[arg-type]


def test_a_message_is_acked_only_after_its_reading_is_committed(store: ReadingStore, database: Path) -> None:
    acks = Acks(database)
    batches: list[Batch] = []
    ingest = make_ingest(store, batches)
    ingest.process([acks.make("0"), acks.make("10"), acks.make("0")])  # the last is a redelivery
    assert acks.acked == ["0", "10", "0"]  # in receipt order, as MQTT requires
    assert all(rows == 2 for rows in acks.committed_at_ack)
    assert [i.timestamp for i in batches[0].result.new] == [v5_utc(0), v5_utc(10)]  # type: ignore[union-attr]
    assert ingest.counters.get("duplicate_readings") == 1


def test_rejected_messages_are_counted_logged_and_acked(
    store: ReadingStore, database: Path, caplog: pytest.LogCaptureFixture
) -> None:
    acks = Acks(database)
    batches: list[Batch] = []
    ingest = make_ingest(store, batches)
    bad_crc = v5().replace("!6EEE", "!0000")
    wrong_signal = json.loads(envelope("m1", v5()))
    wrong_signal["signal"] = "dsmr_backend.signals.post_save"
    messages = [
        acks.incoming("json", b"{not json"),
        acks.incoming("envelope", json.dumps(wrong_signal).encode()),
        acks.incoming("sender", envelope("other", v5())),  # sender differs from the topic
        acks.incoming("crc", envelope("m1", bad_crc)),
        acks.incoming("huge", b"x" * 10_000_000),
        acks.incoming("no data", envelope("m1", "")),
        acks.make("0"),
    ]
    batch = ingest.process(messages)
    assert len(batch.rejected) == 6
    assert ingest.counters.get("rejected_telegrams") == 6
    assert ingest.counters.get("rejected_bad_telegram") == 1
    assert store.counter("rejected_telegrams") == 6
    assert len(acks.acked) == 7  # refused messages are handled too: never redelivered forever
    assert store.count_readings() == 1
    assert "bad CRC" in caplog.text
    assert "bad envelope" in caplog.text


def test_plain_text_telegrams_take_the_meter_from_the_equipment_id(store: ReadingStore) -> None:
    batches: list[Batch] = []
    ingest = make_ingest(store, batches)
    done: list[bool] = []
    ingest.process([Incoming("p1/raw", v5().encode("latin-1"), True, lambda: done.append(True))])
    assert done == [True]
    assert store.count_readings("K8EG004046395507") == 1


def test_plain_text_meter_name_can_be_configured(store: ReadingStore) -> None:
    ingest = make_ingest(store, [], plain_meter="home")
    ingest.process([Incoming("p1/raw", v5().encode("latin-1"), True, lambda: None)])
    assert store.count_readings("home") == 1


def test_telegrams_without_a_time_are_keyed_by_the_envelope_and_stay_idempotent(
    store: ReadingStore,
) -> None:
    payload = envelope("old", real_telegrams()["v3"])
    ingest = make_ingest(store, [])
    ingest.process([Incoming(raw_topic("old"), payload, False, lambda: None)])
    ingest.process([Incoming(raw_topic("old"), payload, False, lambda: None)])  # redelivered
    assert store.count_readings("old") == 1


def test_a_locked_database_is_retried_and_nothing_is_acked_meanwhile(
    store: ReadingStore, database: Path
) -> None:
    acks = Acks(database)
    ingest = make_ingest(store, [])
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    ingest.start()
    try:
        ingest.submit(acks.make("0"))
        wait_for(lambda: ingest.counters.get("storage_errors") >= 1, message="a failed commit")
        assert acks.acked == []
        blocker.execute("COMMIT")
        wait_for(lambda: acks.acked == ["0"], 15, message="ack after the retry")
        assert store.count_readings() == 1
    finally:
        blocker.close()
        ingest.stop()


def test_the_worker_batches_and_drains_on_stop(store: ReadingStore) -> None:
    batches: list[Batch] = []
    ingest = make_ingest(store, batches, batch_size=50)
    acked: list[int] = []
    for i in range(120):
        payload = envelope("m1", v5_at(i))
        ingest.submit(Incoming(raw_topic("m1"), payload, False, functools.partial(acked.append, i)))
    ingest.start()
    ingest.stop()
    assert acked == list(range(120))
    assert all(len(b.accepted) <= 50 for b in batches)
    assert store.count_readings() == 120


def test_outputs_coalesce_to_the_newest_reading_per_meter(store: ReadingStore) -> None:
    batches: list[Batch] = []
    ingest = make_ingest(store, batches)
    messages = [
        Incoming(raw_topic(m), envelope(m, v5_at(i)), False, lambda: None)
        for i in (30, 10, 20)
        for m in ("a", "b")
    ]
    batch = ingest.process(messages)
    newest = {i.meter: i.timestamp for i in batch.newest_per_meter()}
    assert newest == {"a": v5_utc(30), "b": v5_utc(30)}


def test_an_output_failure_does_not_lose_the_reading(store: ReadingStore) -> None:
    def broken(_batch: Batch) -> None:
        raise RuntimeError("broker gone")

    ingest = Ingest(store, broken, counters=Counters())
    acked: list[bool] = []
    ingest.process([Incoming(raw_topic("m1"), envelope("m1", v5()), False, lambda: acked.append(True))])
    assert acked == [True]
    assert ingest.counters.get("output_errors") == 1
    assert store.count_readings() == 1


def test_a_value_the_database_refuses_is_rejected_and_the_rest_stored(database_url: str) -> None:
    store = ReadingStore(make_engine(database_url))
    store.migrate()
    huge = with_crc(v5_at(0).replace("1-0:1.8.1(000004.426*kWh)", "1-0:1.8.1(999999999999.999*kWh)"))
    acked: list[str] = []
    ingest = make_ingest(store, [])
    batch = ingest.process(
        [
            Incoming(raw_topic("m1"), envelope("m1", huge), False, lambda: acked.append("huge")),
            Incoming(raw_topic("m1"), envelope("m1", v5_at(10)), False, lambda: acked.append("ok")),
        ]
    )
    assert acked == ["huge", "ok"]  # both handled: nothing blocks the stream
    if store.engine.dialect.name == "postgresql":  # NUMERIC(18, 7) overflows there
        assert [e.kind for _, e in batch.rejected] == ["bad value"]
        assert store.counter("rejected_telegrams") == 1
        assert store.count_readings() == 1
    else:  # SQLite stores any number
        assert store.count_readings() == 2
    store.engine.dispose()


def test_a_parser_bug_on_one_telegram_rejects_only_that_one(store: ReadingStore) -> None:
    def buggy(text: str, received_at: datetime) -> Reading:
        if "170102192012W" in text:  # v5_at(10)
            raise KeyError("a parser bug")
        return parse(text, received_at=received_at)

    ingest = Ingest(store, lambda _b: None, counters=Counters(), parse=buggy)
    acked: list[int] = []
    batch = ingest.process(
        [
            Incoming(raw_topic("m1"), envelope("m1", v5_at(i)), False, functools.partial(acked.append, i))
            for i in (0, 10, 20)
        ]
    )
    assert acked == [0, 10, 20]
    assert [e.kind for _, e in batch.rejected] == ["bad telegram"]
    assert ingest.counters.get("parser_errors") == 1
    assert store.count_readings() == 2


def test_plain_text_without_carriage_returns_still_passes_the_crc(store: ReadingStore) -> None:
    stripped = v5().replace("\r\n", "\n").encode("latin-1")
    ingest = make_ingest(store, [])
    batch = ingest.process([Incoming("p1/raw", stripped, True, lambda: None)])
    assert batch.rejected == []
    assert store.count_readings() == 1
