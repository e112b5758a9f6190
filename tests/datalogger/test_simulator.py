"""The simulator: valid DSMR 5.0 telegrams whose registers, tariffs, gas and clock add up."""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser

from dsmr_datalogger.simulator import Simulator, SimulatorConfig, telegrams
from dsmr_datalogger.timestamps import parse_timestamp
from tests.datalogger.telegram_text import crc_ok, milli, objects

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
REGISTERS = ("1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2")


def take(start: datetime, count: int, **options: object) -> list[bytes]:
    """``count`` telegrams from a simulator starting at ``start``."""
    return list(itertools.islice(telegrams(SimulatorConfig(start=start, **options)), count))  # type: ignore[arg-type]


def local(*args: int) -> datetime:
    """An Amsterdam local time."""
    return datetime(*args, tzinfo=AMSTERDAM)  # type: ignore[misc, arg-type]


def test_every_telegram_has_a_valid_crc_of_four_upper_case_hex_digits() -> None:
    batch = take(local(2026, 3, 2, 6, 0), 3600)
    assert all(crc_ok(t) for t in batch)
    assert all(t.startswith(b"/SIM5") and t.endswith(b"\r\n") for t in batch)


def test_dsmr_parser_reads_a_simulated_telegram_as_dsmr_5() -> None:
    telegram = take(local(2026, 1, 14, 18, 30), 1)[0]
    parsed = TelegramParser(telegram_specifications.V5).parse(telegram.decode("ascii"))
    fields = objects(telegram)
    assert parsed.ELECTRICITY_USED_TARIFF_2.value * 1000 == milli(fields["1-0:1.8.2"][0])
    assert parsed.ELECTRICITY_ACTIVE_TARIFF.value == "0002"
    assert parsed.P1_MESSAGE_TIMESTAMP.value == datetime(2026, 1, 14, 17, 30, tzinfo=UTC)
    assert parsed.MBUS_DEVICES[0].MBUS_METER_READING.value > 2345


def test_registers_never_decrease_and_add_up_to_the_power_shown_per_tariff() -> None:
    # A June weekday from 05:00 to 11:00: tariff 1 then 2, consumption then solar return.
    batch = [objects(t) for t in take(local(2026, 6, 17, 5, 0), 6 * 720, interval=5)]
    for code in REGISTERS:
        values = [milli(o[code][0]) for o in batch]
        assert all(a <= b for a, b in itertools.pairwise(values)), code
    # Telegram k shows the registers before its own 5 s; sum the power shown per tariff.
    joules = dict.fromkeys(REGISTERS, 0)
    for fields in batch[:-1]:
        tariff = int(fields["0-0:96.14.0"][0])
        joules[f"1-0:1.8.{tariff}"] += 5 * milli(fields["1-0:1.7.0"][0])  # W for 5 s
        joules[f"1-0:2.8.{tariff}"] += 5 * milli(fields["1-0:2.7.0"][0])
    for code in REGISTERS:
        grown_wh = milli(batch[-1][code][0]) - milli(batch[0][code][0])
        integral_wh = joules[code] / 3600
        assert 0 <= integral_wh - grown_wh < 1, code  # the meter truncates to whole Wh
    assert joules["1-0:2.8.2"] > 0, "solar returned power in the morning"
    assert joules["1-0:1.8.1"] > 0 and joules["1-0:1.8.2"] > 0


def test_total_power_equals_the_phases_and_only_one_direction_is_nonzero() -> None:
    for fields in map(objects, take(local(2026, 6, 17, 12, 0), 600)):
        delivered = milli(fields["1-0:1.7.0"][0])
        returned = milli(fields["1-0:2.7.0"][0])
        phases = sum(milli(fields[f"1-0:{c}.7.0"][0]) for c in (21, 41, 61)) - sum(
            milli(fields[f"1-0:{c}.7.0"][0]) for c in (22, 42, 62)
        )
        assert delivered * returned == 0
        assert delivered - returned == phases
        assert all(215 < float(fields[f"1-0:{c}.7.0"][0][:5]) < 245 for c in (32, 52, 72))


@pytest.mark.parametrize(
    ("start", "before", "after"),
    [
        (local(2026, 11, 25, 22, 59, 59), "0002", "0001"),  # Wednesday 23:00: low
        (local(2026, 11, 26, 6, 59, 59), "0001", "0002"),  # Thursday 07:00: normal
        (local(2026, 11, 27, 23, 59, 59), "0001", "0001"),  # into Saturday: stays low
        (local(2026, 11, 29, 23, 59, 59), "0001", "0001"),  # Sunday night into Monday 00:00
        (local(2026, 11, 30, 6, 59, 59), "0001", "0002"),  # Monday 07:00: normal again
    ],
)
def test_tariff_switches_at_23_and_7_local_and_stays_low_all_weekend(
    start: datetime, before: str, after: str
) -> None:
    first, second = (objects(t)["0-0:96.14.0"][0] for t in take(start, 2))
    assert (first, second) == (before, after)


def test_a_saturday_is_low_tariff_all_day() -> None:
    batch = take(local(2026, 11, 28, 0, 0), 24 * 60, interval=60)
    assert {objects(t)["0-0:96.14.0"][0] for t in batch} == {"0001"}


def test_timestamps_follow_dutch_summer_time_into_winter_time() -> None:
    # 25 October 2026: at 03:00 summer time the clock goes back to 02:00 winter time.
    start = datetime(2026, 10, 25, 0, 59, 58, tzinfo=UTC)
    stamps = [objects(t)["0-0:1.0.0"][0] for t in take(start, 4)]
    assert stamps == ["261025025958S", "261025025959S", "261025020000W", "261025020001W"]
    assert [parse_timestamp(s) for s in stamps] == [start + timedelta(seconds=i) for i in range(4)]


def test_timestamps_follow_dutch_winter_time_into_summer_time() -> None:
    start = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)
    stamps = [objects(t)["0-0:1.0.0"][0] for t in take(start, 2)]
    assert stamps == ["260329015959W", "260329030000S"]


def test_gas_is_reported_every_five_minutes_with_its_own_timestamp() -> None:
    start = local(2026, 1, 14, 6, 58, 30)  # a cold weekday morning: the heating is on
    batch = [objects(t) for t in take(start, 3600)]
    readings = [tuple(o["0-1:24.2.1"]) for o in batch]
    changes = [i for i, (a, b) in enumerate(itertools.pairwise(readings), 1) if a != b]
    stamps = [parse_timestamp(readings[i][0]) for i in changes]
    assert len(changes) == 12
    assert all(s.minute % 5 == 0 and s.second == 0 for s in stamps)
    assert all(parse_timestamp(batch[i]["0-0:1.0.0"][0]) == stamps[n] for n, i in enumerate(changes))
    volumes = [milli(r[1]) for r in readings]
    assert all(a <= b for a, b in itertools.pairwise(volumes)) and volumes[-1] > volumes[0]


def test_without_solar_nothing_is_returned_and_without_gas_there_is_no_gas_meter() -> None:
    batch = take(local(2026, 6, 17, 12, 0), 600, solar=False, gas=False)
    assert all(milli(objects(t)["1-0:2.7.0"][0]) == 0 for t in batch)
    assert not any(b"0-1:24.2.1" in t for t in batch)


def test_a_day_has_a_plausible_load_curve() -> None:
    # Winter weekday, no sun to speak of: the evening uses more than the night.
    batch = [objects(t) for t in take(local(2026, 12, 2, 0, 0), 24 * 60, interval=60)]
    watts = [milli(o["1-0:1.7.0"][0]) - milli(o["1-0:2.7.0"][0]) for o in batch]
    night = sum(watts[2 * 60 : 4 * 60]) / 120
    evening = sum(watts[18 * 60 : 20 * 60]) / 120
    assert 100 < night < 400
    assert evening > 2 * night
    assert 2 < sum(watts) * 60 / 3600 / 1000 < 20  # kWh per day of a household


def test_same_seed_same_telegrams_and_the_clock_advances_one_interval() -> None:
    start = local(2026, 5, 5, 12, 0)
    assert take(start, 50) == take(start, 50)
    simulator = Simulator(SimulatorConfig(start=start, interval=10))
    moments = [simulator.step().at for _ in range(3)]
    assert moments == [start + timedelta(seconds=10 * i) for i in range(3)]


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Simulator(SimulatorConfig(start=datetime(2026, 1, 1)))
