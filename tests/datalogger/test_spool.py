"""The disk spool: order, the drop-oldest bound, waking the publisher, surviving a reopen."""

import threading
from pathlib import Path

import pytest

from dsmr_datalogger.spool import Spool
from dsmr_shared.counters import Counters
from tests.helpers import wait_for


def payload(n: int) -> bytes:
    """A 100-byte payload that says which one it is."""
    return f"telegram {n:04d}".encode().ljust(100, b".")


def test_items_come_out_oldest_first_and_leave_only_when_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=1_000_000)
    for n in range(50):
        spool.put("meter", payload(n))
    assert [i.payload for i in spool.oldest(50)] == [payload(n) for n in range(50)]
    first = spool.oldest()[0]
    assert spool.oldest()[0] == first, "peeking does not remove"
    assert spool.delete(first.seq)
    assert spool.oldest()[0].payload == payload(1)
    assert len(spool) == 49 and spool.size_bytes == 4900


def test_when_full_the_oldest_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    counters = Counters()
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=1000, counters=counters)
    for n in range(25):
        spool.put("meter", payload(n))
    assert len(spool) == 10
    assert spool.size_bytes <= 1000
    assert [i.payload for i in spool.oldest(10)] == [payload(n) for n in range(15, 25)]
    assert counters.get("spool_dropped") == 15
    drops = [r for r in caplog.records if "spool full" in r.getMessage()]
    assert drops and "1 dropped so far" in drops[0].getMessage()
    assert len(drops) < 15, "not one warning per dropped telegram"


def test_deleting_an_item_the_bound_already_dropped_is_harmless(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=250)
    old = spool.put("meter", payload(0))
    spool.put("meter", payload(1))
    spool.put("meter", payload(2))  # pushes payload 0 out
    assert not spool.delete(old)
    assert len(spool) == 2 and spool.size_bytes == 200


def test_contents_and_order_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "spool.sqlite3"
    spool = Spool(path, max_bytes=1_000_000)
    for n in range(10):
        spool.put(f"meter{n % 2}", payload(n))
    spool.delete(spool.oldest()[0].seq)
    spool.close()

    reopened = Spool(path, max_bytes=1_000_000)
    assert len(reopened) == 9 and reopened.size_bytes == 900
    reopened.put("meter0", payload(10))
    items = reopened.oldest(100)
    assert [i.payload for i in items] == [payload(n) for n in range(1, 11)]
    assert [i.sender for i in items][:2] == ["meter1", "meter0"]
    assert [i.seq for i in items] == sorted(i.seq for i in items)


def test_wait_oldest_wakes_when_a_telegram_arrives_and_times_out_when_none(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=1_000_000)
    assert spool.wait_oldest(0.05) is None
    got: list[bytes] = []
    waiter = threading.Thread(target=lambda: got.append(spool.wait_oldest(10).payload))  # type: ignore[union-attr]
    waiter.start()
    spool.put("meter", payload(7))
    waiter.join(10)
    assert got == [payload(7)]


def test_wait_empty_returns_once_everything_was_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=1_000_000)
    seqs = [spool.put("meter", payload(n)) for n in range(3)]
    assert not spool.wait_empty(0.01)
    done: list[bool] = []
    waiter = threading.Thread(target=lambda: done.append(spool.wait_empty(10)))
    waiter.start()
    for seq in seqs:
        spool.delete(seq)
    wait_for(lambda: done, message="wait_empty returned")
    assert done == [True]


def test_the_file_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415

    spool = Spool(tmp_path / "spool.sqlite3", max_bytes=1000)
    spool.put("meter", payload(1))
    db = sqlite3.connect(tmp_path / "spool.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT sender, telegram FROM spool").fetchall() == [("meter", payload(1))]
