"""The upload loop against the fake PVOutput, stepped by hand with an injected clock."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dsmr_pvoutput.client import Outcome, PVOutputClient
from dsmr_pvoutput.intervals import FeedResult, TrackerState
from dsmr_pvoutput.outbox import PENDING, REJECTED, SENT, Outbox
from dsmr_pvoutput.settings import PVOutputSettings
from dsmr_pvoutput.status import Status, local_stamp
from dsmr_pvoutput.uploader import IDLE_WAIT, Uploader
from dsmr_shared.counters import Counters
from tests.pvoutput.fake_pvoutput import FakePVOutput
from tests.pvoutput.replay import ZONE, full_day


class Rig:
    """An uploader wired to a real outbox and the fake PVOutput; the clock is ours."""

    def __init__(self, fake: FakePVOutput, tmp_path: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "pvoutput_api_key": fake.api_key,
            "pvoutput_system_id": fake.system_id,
            "pvoutput_api_url": fake.url,
            "pvoutput_backlog_gap": 0,
            "pvoutput_retry_initial": 0.01,
        }
        values.update(overrides)
        self.settings = PVOutputSettings(**values)
        self.now = time.time()
        self.outbox = Outbox(tmp_path / "outbox.sqlite3")
        key = self.settings.pvoutput_api_key
        assert key is not None
        self.client = PVOutputClient(key.get_secret_value(), fake.system_id, 5)
        self.counters = Counters()
        self.forms: list[dict[str, Any]] = []
        self.uploader = Uploader(
            self.settings,
            self.outbox,
            self.client,
            self.counters,
            clock=lambda: self.now,
            notify=self.forms.append,
        )

    def add_day(self, day_offset: int = 1, first: int = 1, last: int = 288) -> list[Status]:
        """Store 5-minute statuses of a local day: number ``first`` (00:05) to ``last`` (24:00)."""
        day = full_day(day_offset)
        start = int(datetime.combine(day, datetime.min.time(), ZONE).timestamp())
        statuses = []
        for i in range(first, last + 1):
            end = start + i * 300
            d, t = local_stamp(end, ZONE)
            statuses.append(Status(end, d, t, v3=i * 10, v4=100 - i))
        self.outbox.record(FeedResult(statuses=statuses), TrackerState(), self.now)
        return statuses

    def drain(self, max_steps: int = 100) -> None:
        """Step until the uploader has nothing left to do right now."""
        for _ in range(max_steps):
            wait = self.uploader.step()
            if wait.wakeable and wait.seconds >= IDLE_WAIT:
                return
            if wait.seconds > 0:
                self.now += wait.seconds  # our clock jumps instead of sleeping
        raise AssertionError("the uploader never went idle")

    def close(self) -> None:
        self.client.close()
        self.outbox.close()


@pytest.fixture
def fake() -> Any:
    server = FakePVOutput().start()
    yield server
    server.stop()


def test_only_the_last_14_days_go_out_oldest_first_in_batches_of_30(
    fake: FakePVOutput, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, tmp_path)
    statuses = rig.add_day(1)
    # Our clock says it is 14 days after that day's noon: its morning is out of the window.
    rig.now = statuses[143].end_ts + 14 * 86400 + 1
    cutoff = rig.now - 14 * 86400
    rig.drain()
    rig.close()
    kept = [s for s in statuses if s.end_ts >= cutoff]
    dropped = [s for s in statuses if s.end_ts < cutoff]
    assert len(kept) == 144 and len(dropped) == 144
    assert sorted(fake.accepted_keys()) == sorted((s.d, s.t) for s in kept)
    assert rig.counters.get("statuses_expired") == len(dropped)
    assert "dropped 144 status(es)" in caplog.text and "older than 14 days" in caplog.text
    batches = fake.seen("addbatchstatus.jsp")
    sizes = [len(b.form["data"].split(";")) for b in batches]
    assert sizes == [30, 30, 30, 30, 23]  # 143 backlog statuses; the newest went live
    firsts = [b.form["data"].split(",")[:2] for b in batches]
    assert firsts == sorted(firsts)  # oldest first
    # Every status POSTed is announced once, in addstatus form, batches included.
    assert len(rig.forms) == len(kept)
    assert sorted((f["d"], f["t"]) for f in rig.forms) == sorted((s.d, s.t) for s in kept)
    assert all(set(f) == {"d", "t", "v3", "v4", "n"} for f in rig.forms)


def test_a_refused_batch_is_split_and_only_the_bad_status_is_dropped(
    fake: FakePVOutput, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(fake, tmp_path)
    statuses = rig.add_day(1, last=40)
    bad = statuses[12]
    fake.refuse = {(bad.d, bad.t)}
    rig.drain(max_steps=200)
    assert rig.outbox.all_statuses(REJECTED) == [bad]
    assert len(rig.outbox.all_statuses(SENT)) == 39
    assert sorted(fake.accepted_keys()) == sorted((s.d, s.t) for s in statuses if s != bad)
    assert rig.counters.get("statuses_rejected") == 1
    assert f"refused the status {bad.d} {bad.t} (HTTP 400: Bad request 400: Moon Powered)" in caplog.text
    rig.close()


def test_bad_key_pauses_with_one_error_and_keeps_the_outbox(
    fake: FakePVOutput, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig = Rig(fake, tmp_path, pvoutput_api_key="another-secret-key-123")
    rig.add_day(1)
    rig.drain()
    rig.drain()
    assert [r.status for r in fake.requests] == [401]
    assert rig.uploader.paused
    assert len(rig.outbox.all_statuses(PENDING)) == 288
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert "another-secret-key-123" not in caplog.text
    rig.close()


def test_backoff_grows_and_is_capped(fake: FakePVOutput, tmp_path: Path) -> None:
    rig = Rig(fake, tmp_path, pvoutput_retry_initial=1, pvoutput_retry_max=8)
    rig.add_day(1)
    fake.stop()
    waits = []
    for _ in range(6):
        wait = rig.uploader.step()
        assert wait.seconds == 0
        wait = rig.uploader.step()
        assert not wait.wakeable
        waits.append(wait.seconds)
        rig.now += wait.seconds
    assert waits[0] <= 1 and waits[1] <= 2 and waits[2] <= 4
    assert all(w <= 8 for w in waits) and waits[-1] >= 8 * 0.8
    rig.close()


def test_live_status_goes_first_and_backlog_keeps_a_reserve(fake: FakePVOutput, tmp_path: Path) -> None:
    fake.limit = 10
    rig = Rig(fake, tmp_path)
    statuses = rig.add_day(1, first=229)
    assert rig.uploader.step().seconds == 0
    assert fake.requests[0].path.endswith("addstatus.jsp")
    assert fake.requests[0].form["t"] == statuses[-1].t  # the newest goes first, live
    # 9 of 10 left this hour, but 13 live statuses are due before the reset: no backlog now.
    wait = rig.uploader.step()
    assert wait.wakeable and wait.seconds > 3000
    assert len(fake.requests) == 1
    rig.now += wait.seconds  # the hour is over
    rig.drain()
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [
        "addstatus.jsp",
        "addbatchstatus.jsp",
        "addbatchstatus.jsp",
    ]
    assert len(fake.accepted_keys()) == 60
    rig.close()


def test_a_slow_server_is_a_timeout_and_retried(fake: FakePVOutput) -> None:
    client = PVOutputClient(fake.api_key, fake.system_id, timeout=0.2)
    fake.mode = "slow"
    answer = client.post(fake.url, {"d": "20261124", "t": "10:00", "v4": 1, "n": 1}, time.time())
    assert answer.outcome is Outcome.RETRY
    assert answer.text == "no answer within 0.2 s"
    fake.mode = "up"
    client.close()
