"""The whole system as real processes: a simulated meter in a pty -> storage, topics, PVOutput, plugins."""

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import partial

import pytest

from tests.e2e.harness import (
    METER,
    Fed,
    Stack,
    accepted_statuses,
    events,
    expected_day,
    expected_statuses,
    keys,
    last_local_midnight,
    reading_key,
    stored_readings,
    table_rows,
)
from tests.helpers import Probe, wait_for

TELEGRAMS = 240
"""40 simulated minutes from 23:30 local: crosses midnight and closes eight 5-minute intervals."""

pytestmark = [pytest.mark.services, pytest.mark.slow]


def feed_in_step(stack: Stack, count: int) -> list[Fed]:
    """Write telegrams one by one, each once the backend published the previous one's reading."""
    probe = stack.probe
    assert probe is not None
    sent = []
    for _ in range(count):
        item = stack.meter.send()
        stamp = reading_key(item.at)
        wait_for(partial(_newest_json, probe, stamp), 10, interval=0.002, message=f"dsmr/json of {stamp}")
        sent.append(item)
    return sent


def _newest_json(probe: Probe, stamp: str) -> bool:
    """True when the newest dsmr/json is the reading of ``stamp``."""
    found = probe.received("dsmr/json")
    return bool(found) and json.loads(found[-1].payload)["timestamp"] == stamp


def test_a_simulated_meter_reaches_storage_topics_pvoutput_and_plugins(stack: Stack) -> None:
    stack.start_all()
    sent = feed_in_step(stack, TELEGRAMS)
    wanted = expected_statuses(sent)
    wait_for(lambda: len(stored_readings(stack.database)) >= TELEGRAMS, 20, message="readings stored")
    wait_for(lambda: accepted_statuses(stack.pvoutput) == wanted, 30, message=f"statuses {wanted}")
    wait_for(lambda: len(keys(stack.record_file, "raw_telegram")) >= TELEGRAMS, 20, message="raw events")
    wait_for(lambda: len(keys(stack.record_file, "post_save", "DsmrReading")) >= TELEGRAMS, 20)

    assert stored_readings(stack.database) == [item.at.replace(microsecond=0) for item in sent]
    assert_live_topics(stack, sent[-1])
    assert len(wanted) == 8
    assert_plugin_events(stack, sent)
    assert_day_statistics(stack, sent)


def assert_day_statistics(stack: Stack, sent: list[Fed]) -> None:
    """Yesterday (the simulation's first, partial day) is computed once the stream crossed midnight."""
    day_start = last_local_midnight(sent[0].at)  # the midnight before the first telegram
    day = day_start.date().isoformat()
    saved = wait_for(lambda: events(stack.record_file, "post_save", "DayStatistics"), 20, message="a day")
    assert [e["key"] for e in saved] == [day]  # once, for the only complete day
    wanted = expected_day(sent, day_start)
    got = {name: Decimal(str(saved[0]["instance"][name])) for name in wanted}
    assert got == wanted
    assert table_rows(stack.database, "day_statistics") == 1
    assert stack.probe is not None
    assert stack.probe.wait_for("dsmr/day-consumption/+")  # today's running totals are published


def assert_live_topics(stack: Stack, last: Fed) -> None:
    """dsmr/reading/* (retained) and the last dsmr/json hold the last telegram's values."""
    assert stack.probe is not None

    def newest(field: str) -> str:
        return stack.probe.received(f"dsmr/reading/{field}")[-1].text  # type: ignore[union-attr]

    assert newest("timestamp") == reading_key(last.at)
    assert newest("electricity_delivered_1") == last.value("d1")
    assert newest("electricity_delivered_2") == last.value("d2")
    assert newest("electricity_currently_delivered") == last.value("cd")
    assert newest("electricity_currently_returned") == last.value("cr")
    document = json.loads(stack.probe.received("dsmr/json")[-1].payload)
    assert document["meter"] == METER
    assert document["timestamp"] == reading_key(last.at)
    assert f"{document['electricity_delivered_1']:.3f}" == last.value("d1")
    assert f"{document['electricity_currently_delivered']:.3f}" == last.value("cd")
    assert document["extra_device_delivered"] is not None


def assert_plugin_events(stack: Stack, sent: list[Fed]) -> None:
    """The plugin heard every signal of every service, in order, none twice."""
    record = stack.record_file
    assert keys(record, "raw_telegram", METER) == [item.stamp for item in sent]
    assert keys(record, "post_save", "DsmrReading") == [reading_key(item.at) for item in sent]
    ticks = keys(record, "backend_called")
    assert ticks and len(ticks) == len(set(ticks))
    uploads = events(record, "pvoutput_upload", stack.pvoutput.system_id)
    posted = [request.form for request in stack.pvoutput.seen("jsp")]
    assert [_as_sent(u["data"]) for u in uploads] == [_as_sent(form) for form in posted]


def _as_sent(form: Mapping[str, object]) -> dict[str, str]:
    """A form with every value as text (the signal carries numbers, the POST text)."""
    return {k: str(v) for k, v in form.items()}
