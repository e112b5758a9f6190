"""Dutch DSMR timestamps from the EU summer-time rule, checked against the tz database."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dsmr_datalogger.timestamps import (
    dutch_time,
    format_timestamp,
    from_dutch_local,
    parse_timestamp,
    telegram_time,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_the_eu_rule_matches_the_tz_database_every_hour_around_each_switch() -> None:
    for year in range(1997, 2040):
        for month in (3, 10):
            start = datetime(year, month, 24, tzinfo=UTC)
            for hour in range(8 * 24):
                moment = start + timedelta(hours=hour, minutes=30)
                expected = moment.astimezone(AMSTERDAM)
                ours = dutch_time(moment)
                assert ours.utcoffset() == expected.utcoffset(), moment
                assert ours.replace(tzinfo=None) == expected.replace(tzinfo=None), moment


def test_format_and_parse_round_trip_through_the_repeated_october_hour() -> None:
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    moments = [start + timedelta(minutes=15 * i) for i in range(5)]
    stamps = [format_timestamp(m) for m in moments]
    assert stamps == [
        "261025023000S",
        "261025024500S",
        "261025020000W",
        "261025021500W",
        "261025023000W",
    ]
    assert [parse_timestamp(s) for s in stamps] == moments


@pytest.mark.parametrize("bad", ["", "2610250230S", "261025023000X", "261325023000W"])
def test_bad_timestamps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(bad)


def test_a_wall_clock_time_gets_the_dutch_offset() -> None:
    assert from_dutch_local(datetime(2026, 1, 5, 12)).utcoffset() == timedelta(hours=1)
    assert from_dutch_local(datetime(2026, 7, 5, 12)).utcoffset() == timedelta(hours=2)
    assert from_dutch_local(datetime(2026, 10, 25, 2, 30)).utcoffset() == timedelta(hours=2)


def test_the_time_of_a_telegram() -> None:
    assert telegram_time(b"/X\r\n\r\n0-0:1.0.0(170102192002W)\r\n!\r\n") == datetime(
        2017, 1, 2, 18, 20, 2, tzinfo=UTC
    )
    assert telegram_time(b"/X\r\n\r\n1-0:1.8.1(1*kWh)\r\n!\r\n") is None
