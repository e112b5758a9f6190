"""The pieces on their own: settings, API_URL, payload parsing, intervals, forms, answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from dsmr_pvoutput.client import Outcome, classify, rate_info
from dsmr_pvoutput.intervals import IntervalTracker, TrackerState
from dsmr_pvoutput.models.settings import (
    PVOutputAddBatchStatusSettings,
    PVOutputAddStatusSettings,
)
from dsmr_pvoutput.readings import PayloadError, Reading, parse_reading
from dsmr_pvoutput.settings import DEFAULT_API_URL, PVOutputSettings
from dsmr_pvoutput.status import Status, addstatus_form, batch_form, parse_batch_answer
from tests.pvoutput.replay import ZONE, day_samples, full_day


def at(hhmm: str, day_offset: int = 0) -> float:
    """Epoch seconds of a local time on a fixed day."""
    base = datetime(2026, 11, 10, tzinfo=ZONE) + timedelta(days=day_offset)
    h, m = hhmm.split(":")[:2]
    s = hhmm.split(":")[2] if hhmm.count(":") == 2 else "0"
    return datetime.combine(base.date(), time(int(h), int(m), int(s)), ZONE).timestamp()


def tracker(delay: int = 0, baselines: dict[str, Reading] | None = None) -> IntervalTracker:
    return IntervalTracker(5, delay, ZONE, baselines if baselines is not None else {}, TrackerState())


# -- settings -------------------------------------------------------------------------------


def test_interval_must_be_5_10_or_15(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSMR_PVOUTPUT_INTERVAL", "10")
    assert PVOutputSettings().pvoutput_interval == 10
    monkeypatch.setenv("DSMR_PVOUTPUT_INTERVAL", "7")
    with pytest.raises(ValidationError, match="must be 5, 10 or 15"):
        PVOutputSettings()


def test_uploads_need_key_and_system_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not PVOutputSettings().uploads_enabled
    monkeypatch.setenv("DSMR_PVOUTPUT_SYSTEM_ID", "4242")
    assert not PVOutputSettings().uploads_enabled
    secret = tmp_path / "key"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("DSMR_PVOUTPUT_API_KEY_FILE", str(secret))
    settings = PVOutputSettings()
    assert settings.uploads_enabled
    assert settings.pvoutput_api_key is not None
    assert settings.pvoutput_api_key.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)
    monkeypatch.setenv("DSMR_PVOUTPUT_SYSTEM_ID", "my system")
    with pytest.raises(ValidationError, match="must be a number"):
        PVOutputSettings()


def test_api_url_reflects_the_setting_at_access_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PVOutputAddStatusSettings.API_URL == DEFAULT_API_URL
    assert PVOutputAddBatchStatusSettings.API_URL == ("https://pvoutput.org/service/r2/addbatchstatus.jsp")
    monkeypatch.setenv("DSMR_PVOUTPUT_API_URL", "http://127.0.0.1:8080/service/r2/addstatus.jsp")
    assert PVOutputAddStatusSettings.API_URL == "http://127.0.0.1:8080/service/r2/addstatus.jsp"
    assert PVOutputAddBatchStatusSettings.API_URL == ("http://127.0.0.1:8080/service/r2/addbatchstatus.jsp")
    settings = PVOutputSettings()
    assert settings.batch_url == PVOutputAddBatchStatusSettings.API_URL


# -- payloads -------------------------------------------------------------------------------


def test_reading_sums_tariffs_and_nets_power() -> None:
    payload = {
        "timestamp": "2026-11-24T10:05:00+00:00",
        "electricity_delivered_1": 1234.567,
        "electricity_delivered_2": 2000.001,
        "electricity_currently_delivered": 0.0,
        "electricity_currently_returned": 1.234,
        "phase_voltage_l1": None,
        "meter": "x",
    }
    reading = parse_reading(json.dumps(payload).encode())
    assert reading.delivered_wh == 3234568
    assert reading.power_w == -1234
    assert reading.ts == datetime(2026, 11, 24, 10, 5, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (b'"text"', "not a JSON object"),
        (b'{"timestamp": "2026-11-24T10:05:00+00:00"}', "electricity_delivered"),
        (
            b'{"timestamp": "2026-11-24T10:05:00+00:00", "electricity_delivered_1": 1,'
            b' "electricity_currently_delivered": true}',
            "not a number",
        ),
        (
            b'{"timestamp": 5, "electricity_delivered_1": 1, "electricity_currently_delivered": 1}',
            "timestamp",
        ),
    ],
)
def test_bad_payloads_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_reading(payload)


# -- intervals ------------------------------------------------------------------------------


def test_interval_closes_on_a_later_reading_and_uses_the_last_one_inside() -> None:
    t = tracker()
    t.feed(Reading(at("10:00"), 1000, 100))
    assert t.feed(Reading(at("10:03"), 1010, 200)).statuses == []
    assert t.feed(Reading(at("10:04:59"), 1020, 300)).statuses == []
    closed = t.feed(Reading(at("10:05:01"), 1030, 400)).statuses
    assert [(s.t, s.v3, s.v4) for s in closed] == [("10:05", 20, 300)]


def test_upload_delay_leaves_the_newest_minutes_out() -> None:
    t = tracker(delay=2)
    t.feed(Reading(at("10:01"), 1000, 100))
    assert t.feed(Reading(at("10:05"), 1050, 500)).statuses == []
    assert t.feed(Reading(at("10:06"), 1060, 600)).statuses == []
    closed = t.feed(Reading(at("10:07"), 1070, 700)).statuses
    assert [(s.t, s.v3, s.v4) for s in closed] == [("10:05", 50, 500)]


def test_a_gap_costs_one_entry_and_late_readings_are_refused() -> None:
    t = tracker()
    t.feed(Reading(at("10:01"), 1000, 100))
    result = t.feed(Reading(at("12:03"), 2000, 100))
    assert [s.t for s in result.statuses] == ["10:05"]
    assert [(g.count) for g in result.gaps] == [23]  # 10:10 .. 12:00 had no reading
    assert t.feed(Reading(at("10:02"), 1001, 100)).late
    assert [s.t for s in t.feed(Reading(at("12:05"), 2010, 1)).statuses] == ["12:05"]


def test_v3_counts_from_the_first_reading_after_local_midnight() -> None:
    baselines: dict[str, Reading] = {}
    t = tracker(baselines=baselines)
    t.feed(Reading(at("23:55", -1), 500, 1))
    t.feed(Reading(at("23:59:50", -1), 590, 1))
    closed = t.feed(Reading(at("00:00:10"), 600, 1)).statuses
    assert [(s.d, s.t, s.v3) for s in closed] == [("20261110", "00:00", 0)]
    t.feed(Reading(at("00:04"), 640, 1))
    closed = t.feed(Reading(at("00:05"), 650, 1)).statuses
    assert [(s.t, s.v3) for s in closed] == [("00:05", 50)]  # from 00:00:10's 600 Wh
    # A restart keeps the baseline: a fresh tracker with the stored baselines agrees.
    again = IntervalTracker(5, 0, ZONE, dict(baselines), TrackerState(t.state.next_end, []))
    again.feed(Reading(at("00:09"), 700, 1))
    assert [s.v3 for s in again.feed(Reading(at("00:10"), 710, 1)).statuses] == [110]


def test_a_replayed_day_gives_one_status_per_interval() -> None:
    t = IntervalTracker(15, 0, ZONE, {}, TrackerState())
    statuses = []
    for s in day_samples(full_day(), step_s=10):
        reading = parse_reading(s.payload())
        statuses += t.feed(reading).statuses
    assert len(statuses) == 97
    assert len({st.end_ts for st in statuses}) == 97
    assert statuses[-1].t == "00:00" and statuses[-1].v3 == 0


# -- forms and answers ----------------------------------------------------------------------


def test_forms_are_what_pvoutput_expects() -> None:
    status = Status(end_ts=0, d="20261124", t="10:05", v3=1234, v4=-560)
    assert addstatus_form(status, None) == {"d": "20261124", "t": "10:05", "v3": 1234, "v4": -560, "n": 1}
    assert addstatus_form(status, 30)["delay"] == 30
    other = Status(end_ts=300, d="20261124", t="10:10", v3=1300, v4=10)
    assert batch_form([status, other]) == {
        "data": "20261124,10:05,,,1234,-560;20261124,10:10,,,1300,10",
        "n": 1,
    }
    assert parse_batch_answer("20261124,10:05,1;20261124,10:10,0") == {
        ("20261124", "10:05"): True,
        ("20261124", "10:10"): False,
    }


@pytest.mark.parametrize(
    ("code", "text", "outcome"),
    [
        (200, "OK 200: Added Status", Outcome.OK),
        (400, "Bad request 400: Moon Powered", Outcome.REJECTED),
        (401, "Unauthorized 401: Invalid API Key", Outcome.AUTH),
        (403, "Forbidden 403: Read only key", Outcome.AUTH),
        (403, "Forbidden 403: Exceeded 60 requests per hour", Outcome.RATE_LIMITED),
        (429, "", Outcome.RATE_LIMITED),
        (500, "Internal Server Error", Outcome.RETRY),
        (503, "", Outcome.RETRY),
    ],
)
def test_answers_are_sorted_by_meaning(code: int, text: str, outcome: Outcome) -> None:
    assert classify(code, text) is outcome


def test_rate_limit_headers() -> None:
    headers = {"X-Rate-Limit-Remaining": "17", "X-Rate-Limit-Reset": "1790000000"}
    assert rate_info(headers, 1789999000.0) == (17, 1790000000.0)
    assert rate_info({"X-Rate-Limit-Reset": "90"}, 1000.0) == (None, 1090.0)
    assert rate_info({"X-Rate-Limit-Remaining": "x"}, 0.0) == (None, None)


def test_a_changed_interval_realigns_the_saved_state() -> None:
    state = TrackerState(next_end=int(at("10:05")), buffer=[])
    t = IntervalTracker(15, 0, ZONE, {}, state)
    assert state.next_end == int(at("10:15"))
    t.feed(Reading(at("10:14"), 1, 1))
    assert [s.t for s in t.feed(Reading(at("10:15"), 2, 2)).statuses] == ["10:15"]
