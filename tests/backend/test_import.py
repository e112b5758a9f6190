"""``dsmr-backend import``: folders, gzip, duplicates, corrupt telegrams, statistics, and SIGKILL."""

from __future__ import annotations

import gzip
import io
import subprocess
from datetime import UTC, date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dsmr_backend.analytics import ReadingPoint
from dsmr_backend.importer import Importer, Progress, compute_statistics
from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.statistics_schema import day_statistics, hour_statistics
from dsmr_backend.storage.store import ReadingStore
from tests.backend.analytics.generator import Scenario, Truth, generate, local_midnight
from tests.backend.capture import EQUIPMENT_ID, capture, telegram
from tests.backend.stored import STATISTICS_TABLES, store_points, table_rows
from tests.helpers import ServiceProcess, console_script, wait_for

AMS = ZoneInfo("Europe/Amsterdam")
JUNE = Scenario(date(2025, 6, 2), date(2025, 6, 3), interval_s=120, offset_s=13, seed=41, meter=EQUIPMENT_ID)


@pytest.fixture(scope="module")
def june() -> tuple[Truth, list[ReadingPoint]]:
    """Two generated days and their truth."""
    return generate(JUNE)


def corrupt(data: bytes) -> bytes:
    """The telegram with one register digit changed: the CRC no longer matches."""
    return data.replace(b"1-0:1.8.1(0", b"1-0:1.8.1(9", 1)


def write_captures(folder: Path, points: list[ReadingPoint]) -> None:
    """A folder with a plain file, a gzip file in a sub-folder (overlapping by 50) and damage."""
    half = len(points) // 2
    (folder / "old").mkdir(parents=True)
    (folder / "a.txt").write_bytes(
        b"garbage before\r\n" + capture(points[:half]) + corrupt(telegram(points[0]))
    )
    tail = capture(points[half - 50 :]) + telegram(points[-1])[:40]  # cut off at the end
    (folder / "old" / "b.dsmr.gz").write_bytes(gzip.compress(tail))


def test_import_a_folder_with_gzip_duplicates_and_corrupt_telegrams(
    tmp_path: Path, database_url: str, june: tuple[Truth, list[ReadingPoint]]
) -> None:
    truth, points = june
    write_captures(tmp_path / "captures", points)
    store = ReadingStore(make_engine(database_url))
    store.migrate()
    stream = io.StringIO()
    summary = Importer(store, batch=700).run([tmp_path / "captures"], Progress(1, stream))
    assert (summary.files, summary.imported, summary.duplicates) == (2, len(points), 50)
    assert dict(summary.rejected) == {"CRC mismatch": 1, "incomplete telegram at the end of the file": 1}
    assert summary.telegrams == len(points) + 50 + 1
    assert "100.0%" in stream.getvalue()
    summary.days = compute_statistics(store, None, io.StringIO())
    assert summary.days == 2
    days = {r["day"]: r for r in table_rows(store.engine, day_statistics)}
    for day in (date(2025, 6, 2), date(2025, 6, 3)):
        wh = truth.wh_between(local_midnight(day), local_midnight(date.fromordinal(day.toordinal() + 1)))
        assert days[day]["electricity2"] * 1000 == wh["d2"]
        assert days[day]["electricity1_returned"] * 1000 == wh["r1"]
    again = Importer(store).run([tmp_path / "captures"])  # a second import stores nothing twice
    assert (again.imported, again.duplicates) == (0, len(points) + 50)
    assert store.count_readings(EQUIPMENT_ID) == len(points)  # named after the equipment id
    store.engine.dispose()


def test_the_import_command_prints_a_summary_and_honours_meter(tmp_path: Path) -> None:
    points = generate(Scenario(date(2025, 6, 2), date(2025, 6, 2), interval_s=600, tail=timedelta(0)))[1]
    (tmp_path / "c.txt").write_bytes(capture(points))
    env = {"DSMR_BACKEND_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [console_script("dsmr-backend"), "import", "--meter", "attic", str(tmp_path / "c.txt")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"imported: {len(points)}" in done.stdout and "rejected: 0" in done.stdout
    assert "import [" in done.stderr  # the progress bar
    store = ReadingStore(make_engine(f"sqlite:///{tmp_path / 'data' / 'dsmr.sqlite3'}"))
    assert store.count_readings("attic") == len(points)
    store.engine.dispose()
    missing = subprocess.run(
        [console_script("dsmr-backend"), "import", str(tmp_path / "nope")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_sigkill_during_a_long_catch_up_leaves_no_partial_day(tmp_path: Path) -> None:
    """A real kill while the statistics of many days are being computed; then it finishes them."""
    scenario = Scenario(date(2025, 1, 6), date(2025, 1, 25), interval_s=300, offset_s=13, seed=51)
    points = generate(scenario)[1]
    database = tmp_path / "data" / "dsmr.sqlite3"
    store = ReadingStore(make_engine(f"sqlite:///{database}"))
    store.migrate()
    store_points(store.engine, points)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    args = [console_script("dsmr-backend"), "import", str(empty)]
    env = {"DSMR_BACKEND_DATA_DIR": str(tmp_path / "data")}
    process = ServiceProcess(args, env).start()
    try:
        assert process.process is not None
        running = process.process
        wait_for(lambda: table_rows(store.engine, day_statistics) or running.poll() is not None, 30, 0.005)
        assert running.poll() is None, process.output()  # still computing ...
        process.kill()  # ... when SIGKILL comes
    finally:
        process.close()
    assert_whole_days(store)
    assert len(table_rows(store.engine, day_statistics)) < 20, "the kill came too late to prove anything"
    finished = ServiceProcess(args, env).start()
    assert finished.process is not None and finished.process.wait(60) == 0, finished.output()
    finished.close()
    assert_whole_days(store)
    killed_then_finished = {t.name: table_rows(store.engine, t) for t in STATISTICS_TABLES}
    reference = ReadingStore(make_engine(f"sqlite:///{tmp_path / 'reference.sqlite3'}"))
    reference.migrate()
    store_points(reference.engine, points)
    compute_statistics(reference, None, io.StringIO())
    assert {t.name: table_rows(reference.engine, t) for t in STATISTICS_TABLES} == killed_then_finished
    assert len(killed_then_finished["day_statistics"]) == 20
    reference.engine.dispose()
    store.engine.dispose()


def assert_whole_days(store: ReadingStore) -> None:
    """Every stored day has all its hours, and no hour exists without its day."""
    days = {r["day"] for r in table_rows(store.engine, day_statistics)}
    hours: dict[date, int] = {}
    for row in table_rows(store.engine, hour_statistics):
        local = row["hour_start"].replace(tzinfo=UTC).astimezone(AMS).date()
        hours[local] = hours.get(local, 0) + 1
    assert set(hours) == days
    assert all(count == 24 for count in hours.values())  # January: no DST switch
