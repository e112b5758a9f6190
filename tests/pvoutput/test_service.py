"""The PVOutput service end to end: real mosquitto, a fake PVOutput over HTTP, a fast replay."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable

import pytest

from dsmr_pvoutput.outbox import PENDING, Outbox
from dsmr_pvoutput.service import PVOutputService
from dsmr_pvoutput.settings import PVOutputSettings
from tests.helpers import Probe, wait_for
from tests.pvoutput.conftest import SIGNALS, no_pending, publish, signal_forms, start
from tests.pvoutput.fake_pvoutput import FakePVOutput
from tests.pvoutput.replay import day_samples, expected_statuses, full_day

pytestmark = pytest.mark.services


def assert_uploaded_once(fake: FakePVOutput, expected: dict[tuple[str, str], tuple[int, int]]) -> None:
    """Every expected status accepted exactly once, with the right values."""
    counts = Counter(fake.accepted_keys())
    assert set(counts) == set(expected)
    assert [k for k, n in counts.items() if n != 1] == []
    for key, fields in fake.statuses().items():
        assert (int(fields["v3"]), int(fields["v4"])) == expected[key], key
        assert fields["n"] == "1"


def assert_secret_absent(fake: FakePVOutput, text: str) -> None:
    assert fake.api_key not in text


def announced_forms(path: str, form: dict[str, str]) -> list[dict[str, str]]:
    """The addstatus forms a POST is announced with: itself, or each line of a batch."""
    if path.endswith("addstatus.jsp"):
        return [form]
    forms = []
    for line in form["data"].split(";"):
        d, t, _v1, _v2, v3, v4 = line.split(",")
        forms.append({"d": d, "t": t, "v3": v3, "v4": v4, "n": form["n"]})
    return forms


def test_normal_day_every_interval_once_with_signal(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = day_samples(full_day())
    expected = expected_statuses(samples)
    assert len(expected) == 289  # 00:00 .. 23:55 and the next day's 00:00
    watcher = mqtt_client()
    watcher.subscribe(SIGNALS)
    probe = mqtt_client()
    service = start(make_settings(), services, probe, samples[0])
    publish(probe, samples[1:])

    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=30, message="all uploaded")
    wait_for(lambda: no_pending(service), message="outbox empty")
    assert_uploaded_once(fake, expected)

    requests = fake.seen()
    assert all(r.status == 200 for r in requests)
    for r in requests:
        assert r.headers["x-rate-limit"] == "1"
        assert r.headers["user-agent"].startswith("dsmr-mqtt/")
        assert r.headers["x-pvoutput-systemid"] == fake.system_id
    # The signal carries the addstatus form of every status POSTed, in order: a live POST's form
    # as is, a batch's statuses one by one (so DSMR-reader's mirror plugin works unchanged).
    announced = [form for r in requests for form in announced_forms(r.path, r.form)]
    wait_for(lambda: len(signal_forms(watcher)) == len(announced), message="every signal")
    forms = signal_forms(watcher)
    assert [{k: str(v) for k, v in f.items()} for f in forms] == announced
    senders = {json.loads(m.payload)["sender"] for m in watcher.received(SIGNALS)}
    assert senders == {fake.system_id}
    live = [r for r in requests if r.path.endswith("addstatus.jsp")]
    assert live and set(live[0].form) == {"d", "t", "v3", "v4", "n"}
    assert service.counters.get("invalid_payloads") == 0
    assert_secret_absent(fake, caplog.text)


def test_pvoutput_down_two_hours_then_back(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = day_samples(full_day())
    expected = expected_statuses(samples)
    day = samples[0].ts.strftime("%Y%m%d")
    probe = mqtt_client()
    service = start(make_settings(), services, probe, samples[0])
    publish(probe, samples[1:481])  # up to 08:00
    wait_for(lambda: (day, "08:00") in fake.statuses(), timeout=20, message="08:00 uploaded")

    fake.stop()  # first hour: connection refused
    publish(probe, samples[481:541])
    wait_for(lambda: service.counters.get("upload_retries") >= 1, message="a retry")
    fake.start(mode="error500")  # second hour: 500 answers
    publish(probe, samples[541:601])  # up to 10:00
    wait_for(lambda: fake.seen(status=500), message="a 500 answer")
    assert not [t for d, t in fake.accepted_keys() if d == day and "08:00" < t <= "10:00"]

    fake.mode = "up"
    publish(probe, samples[601:])
    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=30, message="all uploaded")
    wait_for(lambda: no_pending(service), message="outbox empty")
    assert_uploaded_once(fake, expected)

    batches = fake.seen("addbatchstatus.jsp", status=200)
    batched = [tuple(e.split(",")[:2]) for r in batches for e in r.form["data"].split(";")]
    # What piled up in the outage went in batches. Which statuses exactly depends on where the
    # uploader's retries stood when the server came back, so only "some" is asserted here.
    assert any(d == day and "08:00" < t <= "10:00" for d, t in batched)
    assert batched == sorted(batched)  # oldest first, batch after batch
    assert all(len(r.form["data"].split(";")) <= 30 for r in batches)
    assert all(len({e[:8] for e in r.form["data"].split(";")}) == 1 for r in batches)
    assert "retry" in caplog.text
    assert_secret_absent(fake, caplog.text)


def test_rate_limit_waits_for_reset_and_loses_nothing(
    make_settings: Callable[..., PVOutputSettings],
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    fake: FakePVOutput,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.limit, fake.window = 4, 1.0
    samples = day_samples(full_day())[:121]  # 00:00 .. 02:00: 25 statuses
    expected = expected_statuses(samples)
    fake.use_allowance(4)  # another uploader on the same key used this hour's allowance
    probe = mqtt_client()
    service = start(make_settings(pvoutput_batch_size=5), services, probe, samples[0])
    publish(probe, samples[1:])

    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=30, message="all uploaded")
    wait_for(lambda: no_pending(service), message="outbox empty")
    assert_uploaded_once(fake, expected)
    refused = fake.seen(status=403)
    assert len(refused) == 1  # after that, X-Rate-Limit-Remaining kept it inside the limit
    reset = int(refused[0].answer_headers["X-Rate-Limit-Reset"])
    later = [r for r in fake.requests if r.at > refused[0].at]
    assert later and all(r.at >= reset for r in later)
    assert service.counters.get("rate_limited") == 1
    assert "rate limit reached" in caplog.text


def test_malformed_payloads_are_logged_counted_and_ignored(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = day_samples(full_day())[:61]  # one hour: 13 statuses
    expected = expected_statuses(samples)
    good = json.loads(samples[5].payload())
    bad: list[bytes] = [
        b"not json {",
        b"[1, 2, 3]",
        json.dumps({**good, "electricity_delivered_1": None, "electricity_delivered_2": None}).encode(),
        json.dumps({**good, "electricity_currently_delivered": "lots"}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "timestamp"}).encode(),
        json.dumps({**good, "timestamp": "yesterday noon"}).encode(),
        json.dumps({**good, "timestamp": "2099-01-01T00:00:00+00:00"}).encode(),
    ]
    probe = mqtt_client()
    service = start(make_settings(), services, probe, samples[0])
    for i, sample in enumerate(samples[1:]):
        probe.publish("dsmr/json", sample.payload())
        if i < len(bad):
            probe.publish("dsmr/json", bad[i])

    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=20, message="all uploaded")
    assert_uploaded_once(fake, expected)
    assert service.counters.get("invalid_payloads") == len(bad)
    lines = [r for r in caplog.records if r.getMessage().startswith("ignored a payload on dsmr/json")]
    assert len(lines) == len(bad)
    assert all(r.levelno == logging.WARNING for r in lines)
    assert service.bus.counters.get("handler_errors") == 0


def test_restart_resumes_the_outbox_and_the_day(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
) -> None:
    samples = day_samples(full_day())
    expected = expected_statuses(samples)
    settings = make_settings()
    fake.stop()
    probe = mqtt_client()
    first = start(settings, services, probe, samples[0])
    publish(probe, samples[1:721])  # up to 12:00 while PVOutput is unreachable
    outbox = first.outbox
    assert outbox is not None
    wait_for(lambda: outbox.counts().get(PENDING) == 145, message="145 pending")
    first.stop()
    services.remove(first)

    stored = Outbox(settings.pvoutput_outbox)
    assert len(stored.all_statuses(PENDING)) == 145
    stored.close()
    publish(probe, samples[721:781])  # 12:01 .. 13:00 while the service is down: queued
    fake.start()
    second = start(settings, services, probe, None)
    publish(probe, samples[781:])
    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=30, message="all uploaded")
    wait_for(lambda: no_pending(second), message="outbox empty")
    assert_uploaded_once(fake, expected)
    assert fake.seen("addbatchstatus.jsp", status=200)


def test_bad_key_one_clear_error_then_new_settings_upload_everything(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = day_samples(full_day())[:121]
    expected = expected_statuses(samples)
    wrong_key = "wr0ng-k3y-never-logged"
    probe = mqtt_client()
    service = start(make_settings(pvoutput_api_key=wrong_key), services, probe, samples[0])
    publish(probe, samples[1:])
    wait_for(lambda: service.counters.get("readings") >= len(samples), message="all read")
    outbox = service.outbox
    assert outbox is not None
    wait_for(lambda: outbox.counts().get(PENDING) == len(expected), message="all pending")

    assert [r.status for r in fake.requests] == [401]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "refused the API key or system id" in errors[0].getMessage()
    assert "Unauthorized 401: Invalid API Key" in errors[0].getMessage()
    assert wrong_key not in caplog.text and fake.api_key not in caplog.text
    service.stop()
    services.remove(service)

    fixed = start(make_settings(), services, probe, None)
    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), timeout=20, message="uploaded")
    wait_for(lambda: no_pending(fixed), message="outbox empty")
    assert_uploaded_once(fake, expected)


def test_chosen_meter_reads_its_own_topic(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
) -> None:
    samples = day_samples(full_day())[:31]
    expected = expected_statuses(samples)
    probe = mqtt_client()
    service = PVOutputService(make_settings(pvoutput_meter="garage meter"))
    services.append(service)
    service.start()

    def heard() -> bool:
        probe.publish("dsmr/meter/garage_meter/json", samples[0].payload("garage meter"))
        return service.counters.get("readings") > 0

    wait_for(heard, interval=0.1, message="subscribed to the meter's topic")
    for sample in samples[1:]:
        probe.publish("dsmr/json", b'{"other": "meter"}')  # the default meter's topic: not ours
        probe.publish("dsmr/meter/garage_meter/json", sample.payload("garage meter"))
    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), message="uploaded")
    assert_uploaded_once(fake, expected)
    assert service.counters.get("invalid_payloads") == 0


def test_intervals_without_readings_are_not_uploaded_and_the_log_says_why(
    make_settings: Callable[..., PVOutputSettings],
    fake: FakePVOutput,
    mqtt_client: Callable[..., Probe],
    services: list[PVOutputService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    samples = day_samples(full_day())[:121]
    kept = samples[:31] + samples[61:]  # no reading from 00:31 to 01:00
    expected = expected_statuses(kept)
    day = samples[0].ts.strftime("%Y%m%d")
    probe = mqtt_client()
    service = start(make_settings(), services, probe, kept[0])
    publish(probe, kept[1:])
    wait_for(lambda: len(fake.accepted_keys()) >= len(expected), message="uploaded")
    assert_uploaded_once(fake, expected)
    assert (day, "00:35") not in fake.statuses() and (day, "01:00") not in fake.statuses()
    assert service.counters.get("intervals_without_data") == 6
    assert f"no status for 6 interval(s) ending {day} 00:35..{day} 01:00" in caplog.text
