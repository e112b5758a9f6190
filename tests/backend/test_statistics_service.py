"""The statistics task inside the Backend on a real mosquitto: post_save, DSMR-reader's topics, discovery."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dsmr_backend.analytics import (
    DayRows,
    DayStatistics,
    ReadingPoint,
    compute_day,
    day_so_far,
    gas_changes,
    parse_prices,
    quarter_hour_peaks,
)
from dsmr_backend.analytics.periods import local_day
from dsmr_backend.period_outputs import day_totals, format_value, period_totals
from dsmr_backend.service import Backend
from dsmr_backend.settings import BackendSettings
from dsmr_backend.storage.engine import make_engine
from dsmr_backend.storage.store import ReadingStore
from tests.backend.analytics.expected import prices_toml
from tests.backend.analytics.generator import Scenario, generate
from tests.backend.capture import telegram
from tests.backend.stored import store_points
from tests.backend.telegrams import envelope, raw_topic
from tests.helpers import Mosquitto, Probe, wait_for

pytestmark = pytest.mark.services

# Two whole days in June 2025, then two hours of the third ("today" for the live topics).
JUNE = Scenario(date(2025, 6, 2), date(2025, 6, 3), interval_s=60, offset_s=13, seed=31, meter="m1")
POST_SAVE = "dsmr/dsmr_backend/signals/post_save"


@pytest.fixture
def stored_backend(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[list[ReadingPoint]], Backend]]:
    """A Backend in a thread whose database already holds the given readings (it was down)."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(points: list[ReadingPoint]) -> Backend:
        database = tmp_path / "data" / "dsmr.sqlite3"
        store = ReadingStore(make_engine(f"sqlite:///{database}"))
        store.migrate()
        store_points(store.engine, points)
        store.engine.dispose()
        env = {
            **mosquitto.env(),
            "DSMR_BACKEND_DATA_DIR": str(tmp_path / "data"),
            "DSMR_BACKEND_LOOP_INTERVAL": "0.1",
            "DSMR_BACKEND_PRICES": prices_toml(),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        backend = Backend(BackendSettings())
        stop = threading.Event()
        thread = threading.Thread(target=backend.run, args=(stop,), daemon=True)
        thread.start()
        running.append((stop, thread))
        return backend

    yield start
    for stop, thread in running:
        stop.set()
        thread.join(30)


def envelopes(probe: Probe, kind: str, count: int) -> list[dict[str, Any]]:
    """The distinct post_save envelopes of ``kind`` heard (by id: overlapping subscriptions repeat
    them), in order, once there are ``count``."""
    by_id: dict[str, dict[str, Any]] = {}
    for message in probe.received(f"{POST_SAVE}/{kind}"):
        body = json.loads(message.payload)
        by_id.setdefault(body["id"], body)
    return list(by_id.values()) if len(by_id) >= count else []


def expected_days(points: list[ReadingPoint]) -> list[DayStatistics]:
    """The two whole days as the analytics compute them (with the test prices)."""
    prices = parse_prices(prices_toml())
    days = []
    for day in (date(2025, 6, 2), date(2025, 6, 3)):
        rows = compute_day(points, day, now=points[-1].timestamp, prices=prices)
        assert isinstance(rows, DayRows)
        days.append(rows.day)
    return days


def test_a_catch_up_sends_post_save_and_publishes_dsmr_reader_topics(
    stored_backend: Callable[[list[ReadingPoint]], Backend], mqtt_client: Callable[..., Probe]
) -> None:
    _truth, points = generate(JUNE)
    probe = mqtt_client()
    probe.subscribe(f"{POST_SAVE}/#")
    probe.subscribe("dsmr/#")
    stored_backend(points)
    # Each day is stored in its own transaction with its post_save (newest per kind): one per day.
    saves = wait_for(lambda: envelopes(probe, "DayStatistics", 2), 30, message="two days' post_save")
    assert [s["kwargs"]["instance"]["day"] for s in saves] == ["2025-06-02", "2025-06-03"]
    signal = saves[-1]
    days = expected_days(points)
    instance = signal["kwargs"]["instance"]
    assert signal["kwargs"]["created"] is True
    assert instance["meter"] == "m1"
    assert instance["total_cost"] == float(days[-1].total_cost or 0)
    assert instance["electricity1"] == float(days[-1].electricity1)
    for kind in ("ElectricityConsumption", "GasConsumption", "HourStatistics"):
        probe.wait_for(f"{POST_SAVE}/{kind}")

    prices = parse_prices(prices_toml())
    today = day_so_far(points, local_day(points[-1].timestamp), prices=prices)
    assert today is not None
    expected = {
        **{
            f"day-consumption/{k}": format_value(k, v)
            for k, v in day_totals(today, prices.for_day(today.day)).items()
        },
        **{f"current-month/{k}": format_value(k, v) for k, v in period_totals([*days, today]).items()},
        "consumption/gas/delivered": format_value("delivered", gas_changes(points)[-1].delivered),
        "consumption/quarter-hour-peak-electricity/average_delivered": format_value(
            "average_delivered", quarter_hour_peaks(points)[-1].average_delivered
        ),
    }
    assert expected["day-consumption/total_cost"] and expected["current-month/electricity_merged"]
    for suffix, text in expected.items():
        for root in ("dsmr", "dsmr/meter/m1"):
            topic = f"{root}/{suffix}"
            assert probe.wait_for(topic, timeout=20)[-1].text == text, topic

    # Live: two new telegrams over MQTT complete a minute; today's totals follow.
    newer = [
        replace(
            points[-1],
            timestamp=points[-1].timestamp + timedelta(minutes=n),
            delivered_2=points[-1].delivered_2 + n,
        )
        for n in (1, 2)
    ]
    for point in newer:
        probe.publish(raw_topic("m1"), envelope("m1", telegram(point).decode("latin-1")))
    live = day_so_far([*points, *newer], today.day, prices=prices)
    assert live is not None and live.electricity2 == today.electricity2 + 2
    want = format_value("electricity2", live.electricity2)
    probe.wait_for("dsmr/day-consumption/electricity2", where=lambda m: m.text == want, timeout=20)

    late = mqtt_client()  # retained, as DSMR-reader sends them
    late.subscribe("dsmr/day-consumption/electricity2")
    retained = late.wait_for("dsmr/day-consumption/electricity2")[-1]
    assert retained.retain and retained.text == want
