"""Parser behaviour beyond the reference: DST, CRC, bad lines, extras, units, the fast path."""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dsmr_backend import parser
from dsmr_backend.parser import TelegramError, decode_hex_text, parse, parse_timestamp
from dsmr_shared.crc import crc16
from dsmr_shared.errors import DsmrError

REAL = Path("/work/shared/telegrams/real")


def real(name: str) -> str:
    return (REAL / f"{name}.txt").read_bytes().decode("latin-1")


def telegram(*lines: str, crc: bool = True, header: str = "/TST5\\2TEST-METER") -> str:
    """A telegram around these data lines, with a correct CRC unless crc=False."""
    text = f"{header}\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!"
    return text + (f"{crc16(text.encode('latin-1')):04X}" if crc else "") + "\r\n"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# ---------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("240331015959W", utc(2024, 3, 31, 0, 59, 59)),  # last second of winter time
        ("240331030000S", utc(2024, 3, 31, 1, 0, 0)),  # clocks jumped 02:00 -> 03:00
        ("241027015959S", utc(2024, 10, 26, 23, 59, 59)),
        ("241027023000S", utc(2024, 10, 27, 0, 30, 0)),  # the repeated hour, first pass (CEST)
        ("241027023000W", utc(2024, 10, 27, 1, 30, 0)),  # the repeated hour, second pass (CET)
        ("241027030000W", utc(2024, 10, 27, 2, 0, 0)),
        ("170102192002W", utc(2017, 1, 2, 18, 20, 2)),
        ("200512135409S", utc(2020, 5, 12, 11, 54, 9)),
        ("161107190000", utc(2016, 11, 7, 18, 0, 0)),  # DSMR 2.2 gas: no flag, local time
        ("241027023000", utc(2024, 10, 27, 0, 30, 0)),  # no flag in the repeated hour: fold 0
        ("000101000001W", utc(1999, 12, 31, 23, 0, 1)),
    ],
)
def test_timestamps_are_dutch_local_time_stored_as_utc(sent: str, expected: datetime) -> None:
    assert parse_timestamp(sent) == expected
    # and through a whole telegram (the hour cache must give the same answer twice)
    for _ in range(2):
        reading = parse(telegram(f"0-0:1.0.0({sent})"))
        assert reading.timestamp == expected
        assert reading.values["timestamp"] == expected


def test_repeated_autumn_hour_keeps_s_and_w_apart_in_the_cache() -> None:
    summer = parse(telegram("0-0:1.0.0(241027021500S)")).timestamp
    winter = parse(telegram("0-0:1.0.0(241027021500W)")).timestamp
    assert summer is not None and winter is not None
    assert (winter - summer).total_seconds() == 3600


@pytest.mark.parametrize("placeholder", ["", "632525252525W", "632525252525S"])
def test_no_time_placeholders_read_as_no_value(placeholder: str) -> None:
    assert parse_timestamp(placeholder) is None
    reading = parse(telegram("0-1:24.1.0(003)", f"0-1:24.2.1({placeholder})(00012.345*m3)", crc=False))
    device = reading.mbus[1]
    assert (device.value, device.timestamp) == (None, None)
    assert reading.extra_device() is None
    assert "extra_device_delivered" not in reading.values


def test_telegram_without_timestamp_takes_the_receive_time() -> None:
    received = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
    assert parse(real("v2_2")).timestamp is None
    assert parse(real("v2_2"), received_at=received).timestamp == received
    assert parse(real("v5"), received_at=received).timestamp == utc(2017, 1, 2, 18, 20, 2)


# ---------------------------------------------------------------- CRC and framing


def test_bad_crc_is_rejected_with_the_end_line() -> None:
    broken = real("v5").replace("000004.426", "000004.427")
    with pytest.raises(TelegramError) as caught:
        parse(broken)
    assert caught.value.line_number == 40
    assert caught.value.line == "!6EEE"
    assert "bad CRC: sent 6EEE, computed" in caught.value.reason
    assert isinstance(caught.value, DsmrError)
    # the same telegram parses when the caller checked framing already
    assert parse(broken, check_crc=False).values["electricity_delivered_1"] == Decimal("4.427")


@pytest.mark.parametrize("field", ["!XYZ1", "!12345"])
def test_crc_field_must_be_one_to_four_hex_digits(field: str) -> None:
    with pytest.raises(TelegramError, match="CRC is not 1 to 4 hex digits"):
        parse(real("v5").replace("!6EEE", field))


def test_crc_accepts_lower_case_and_short_forms() -> None:
    assert parse(real("v5").replace("!6EEE", "!6eee")).meter.header == "ISk5\\2MT382-1000"
    assert parse(real("unpadded_crc")).values["heat_delivered"] == Decimal("240.860")


def test_junk_around_the_telegram_is_ignored() -> None:
    reading = parse("garbage\r\n" + real("v5") + "\r\nmore garbage\r\n")
    assert reading.values["electricity_delivered_1"] == Decimal("4.426")
    assert parse(real("esy5q3db1024_v304")).values["electricity_returned_total"] == Decimal("19949.3221493")


@pytest.mark.parametrize(
    ("text", "line_number", "reason"),
    [
        ("no telegram here", 1, "no '/' header line"),
        ("/TST5 meter\r\n\r\n1-0:1.8.1(000001.000*kWh)\r\n", 3, "no '!' end line"),
        ("/\r\n\r\n!\r\n", 1, "empty header line"),
    ],
)
def test_framing_errors(text: str, line_number: int, reason: str) -> None:
    with pytest.raises(TelegramError) as caught:
        parse(text)
    assert (caught.value.line_number, caught.value.reason) == (line_number, reason)


# ---------------------------------------------------------------- malformed lines


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1-0:1.8.1(00abc.426*kWh)", "'00abc.426' is not a number"),
        ("1-0:1.8.1(1.2.3*kWh)", "'1.2.3' is not a number"),
        ("1-0:1.8.1(000004.426*V)", "unit 'V' where kWh is expected"),
        ("1-0:1.8.1(000004.426*kWh", "line does not end with ')'"),
        ("1-0:1.8.1 000004.426*kWh", "not an OBIS code followed by (value)"),
        ("x(000004.426*kWh)", "'x' is not an OBIS code"),
        ("1-0:1.8.1(000004.426*kWh)junk", "line does not end with ')'"),
        ("0-0:96.14.0(00x2)", "'00x2' is not an integer"),
        ("0-0:1.0.0(171302192002W)", "month must be in 1..12"),
        ("0-0:1.0.0(170102192002X)", "flag 'X' is not S or W"),
        ("0-0:1.0.0(1701021920)", "is not YYMMDDhhmmss plus S or W"),
        ("0-0:1.0.0(170102196102W)", "minute or second out of range"),
        ("1-3:0.2.8(50)(51)", "expected one value, got several"),
        ("1-0:99.97.0(2)(0-0:96.7.19)(190326095015W)(0000002014*s)", "says 2 entries but has 1"),
        ("0-1:24.2.1(170102161005W)", "expected (time)(value*unit)"),
        ("0-0:17.0.0(016*V)", "unit 'V' is not one of"),
    ],
)
def test_a_malformed_line_names_its_number_line_and_reason(line: str, reason: str) -> None:
    lines = ["1-3:0.2.8(50)", "1-0:2.8.1(000002.444*kWh)", line, "0-0:96.14.0(0002)"]
    if line.startswith("1-3:0.2.8"):
        lines[0] = "1-0:1.8.2(000002.399*kWh)"
    with pytest.raises(TelegramError) as caught:
        parse(telegram(*lines))
    error = caught.value
    assert error.line_number == 5  # header, blank line, two good lines, then this one
    assert error.line == line
    assert reason in error.reason
    assert str(error).startswith(f"line 5: {error.reason}: ")


def test_error_message_cuts_very_long_lines() -> None:
    line = "0-0:96.14.0(" + "x" * 5000 + ")"
    with pytest.raises(TelegramError) as caught:
        parse(telegram(line))
    assert len(str(caught.value)) < 400


def test_non_latin1_text_with_a_crc_is_an_error_not_a_crash() -> None:
    text = telegram("0-0:96.13.0(caf\u20ac)", crc=False).replace("!\r\n", "!1234\r\n")
    with pytest.raises(TelegramError, match="outside latin-1"):
        parse(text)


def test_random_damage_gives_a_reading_or_a_telegram_error_never_a_crash() -> None:
    rng = random.Random(3)
    sources = [real(path.stem) for path in sorted(REAL.glob("*.txt"))]
    alphabet = "()*.:-!/0123456789ABSWkWhV\r\n \x00\u00e9"
    for _ in range(1500):
        text = list(rng.choice(sources))
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(text))
            action = rng.randrange(3)
            if action == 0:
                text[position] = rng.choice(alphabet)
            elif action == 1:
                del text[position]
            else:
                text.insert(position, rng.choice(alphabet))
        with contextlib.suppress(TelegramError):
            parse("".join(text), check_crc=rng.random() < 0.5)


# ---------------------------------------------------------------- extras, units, M-Bus


def test_unknown_obis_lines_are_kept_as_extras() -> None:
    reading = parse(
        telegram(
            "1-0:1.8.1(000001.000*kWh)",
            "0-0:96.99.9(hello)(world)",
            "0-1:24.9.9(42)",
            "1-0:1.8.1*255(000002.000*kWh)",
        )
    )
    assert reading.extras == {"0-0:96.99.9": "(hello)(world)", "0-1:24.9.9": "(42)"}
    assert reading.values["electricity_delivered_1"] == Decimal("2.000")  # "*255" known; last wins


def test_non_belgian_98_1_0_is_an_extra_not_an_error() -> None:
    reading = parse(real("v5_eon_hu"))
    assert reading.extras["0-0:98.1.0"].startswith("(230701000000S)(000040.777*kWh)")
    assert reading.peak_history == ()


def test_units_are_converted_exactly_to_the_canonical_unit() -> None:
    values = parse(real("sagemcom_t210_d_r")).values
    assert values["electricity_delivered_total"] == Decimal("6545.766")  # 006545766*Wh
    assert values["electricity_currently_delivered"] == Decimal("0.286")  # 000000286*W
    assert values["reactive_energy_exported_total"] == Decimal("3897.726")  # varh -> kvarh
    assert values["reactive_power_exported"] == Decimal("0.166")  # var -> kvar
    easy = parse(real("esy5q3da1004_v304")).values
    assert easy["phase_currently_delivered_l3"] == Decimal("0.60930")  # 000609.30*W
    assert str(easy["electricity_delivered_total"]) == "32549.5061662"  # no digit lost


def test_value_without_unit_is_taken_in_the_canonical_unit() -> None:
    reading = parse(telegram("1-0:1.7.0(01.193)", "1-0:1.8.1()"))
    assert reading.values == {"electricity_currently_delivered": Decimal("1.193")}


def test_threshold_row_is_picked_by_the_sent_unit() -> None:
    assert parse(real("v3")).values["current_threshold"] == Decimal(16)
    assert parse(real("v2_2")).values["power_threshold"] == Decimal("999.00")
    assert parse(telegram("0-0:17.0.0(0999000*W)")).values["power_threshold"] == Decimal("999")


def test_mbus_devices_with_types_ids_and_their_own_times() -> None:
    fluvius = parse(real("fluvius_v171"))
    gas, water = fluvius.mbus[1], fluvius.mbus[2]
    assert (gas.kind, gas.device_type, gas.valve_position) == ("gas", 3, 1)
    assert (gas.equipment_id, gas.equipment_id_raw) == ("7FLO2119033733", "37464C4F32313139303333373333")
    assert (water.kind, water.value, water.unit) == ("water", Decimal("872.234"), "m3")
    assert fluvius.values["water_delivered"] == Decimal("872.234")
    heat = parse(real("unpadded_crc")).mbus[1]
    assert (heat.kind, heat.value, heat.unit) == ("heat", Decimal("240.860"), "GJ")
    old = parse(real("v2_2")).mbus[1]  # two-line DSMR 2.2 form
    assert (old.value, old.unit, old.timestamp) == (Decimal("1.001"), "m3", utc(2016, 11, 7, 18))


def test_extra_device_is_the_first_gas_device_with_a_reading() -> None:
    reading = parse(real("v5_two_mbus"))  # channel 1 unlinked, gas on channel 2
    extra = reading.extra_device()
    assert extra is not None
    assert extra.extra_device_delivered == Decimal("246.138")
    assert extra.extra_device_timestamp == utc(2020, 4, 26, 20, 30, 1)
    assert reading.values["extra_device_delivered"] == Decimal("246.138")
    assert reading.gas() is reading.mbus[2]


def test_power_failure_log_peak_demand_and_identity() -> None:
    kaifa = parse(real("v4_2"))
    assert [f.duration_s for f in kaifa.power_failures] == [237126, 2147583646, 2317482647]
    assert kaifa.power_failures[0].ended_at == utc(2000, 1, 4, 17, 3, 20)
    peak = parse(real("fluvius_v171_alt")).peak_demand
    assert peak is not None
    assert (peak.current_average, peak.month_max) == (Decimal("0.052"), Decimal("3.064"))
    assert peak.month_max_at == utc(2023, 11, 2, 10, 45)
    assert [(p.peak_at, p.value) for p in peak.history][:2] == [
        (None, Decimal("0.000")),  # "632525252525W": no peak yet that month
        (utc(2023, 8, 31, 16, 15), Decimal("1.862")),
    ]
    v5 = parse(real("v5"))
    assert v5.peak_demand is None
    assert v5.meter.header == "ISk5\\2MT382-1000"
    assert v5.meter.equipment_id == "K8EG004046395507"
    assert v5.meter.equipment_id_raw == "4B384547303034303436333935353037"
    assert parse(real("v3")).text_message == "0123456789:;<=>?" * 5


def test_decode_hex_text() -> None:
    assert decode_hex_text("4B384547") == "K8EG"
    assert decode_hex_text("00000000000000") == "00000000000000"  # NULs: not text
    assert decode_hex_text("09610") == "09610"  # odd length
    assert decode_hex_text("1ESY1336001560") == "1ESY1336001560"  # not hex
    assert decode_hex_text("") == ""


# ---------------------------------------------------------------- the fast path (shapes)


def _outcome(text: str, *, check_crc: bool = True) -> object:
    """The Reading, or the error message."""
    try:
        return parse(text, check_crc=check_crc)
    except TelegramError as exc:
        return str(exc)


def _line_by_line(text: str) -> object:
    """Parse with no shape known: the reference path."""
    parser._SHAPES.clear()
    try:
        return _outcome(text)
    finally:
        parser._SHAPES.clear()


def _by_shape(learn_from: str, text: str) -> object:
    """Parse after a shape was learned from another telegram."""
    parser._SHAPES.clear()
    parse(learn_from)
    parse(learn_from)
    # DSMR 2.2/3 two-line gas values are always read line by line; all others teach a shape.
    assert bool(parser._SHAPES) == ("\n(" not in learn_from)
    return _outcome(text)


@pytest.mark.parametrize("path", sorted(REAL.glob("*.txt")), ids=lambda p: p.stem)
def test_shape_path_reads_every_real_telegram_like_the_line_by_line_path(path: Path) -> None:
    text = real(path.stem)
    assert _by_shape(text, text) == _line_by_line(text)


def test_shape_path_equals_line_by_line_path_on_changed_telegrams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(7)
    base = real("v5")
    # Mostly digits (the shape still fits: values change), plus structure breakers.
    edits = [*"0123456789" * 2, ".", "*", "W", "S", "kW", "()", ")(", "", "\r\n", "-", "x", "\x1c"]
    parser._SHAPES.clear()
    parse(base)
    learned = dict(parser._SHAPES)
    monkeypatch.setattr(parser, "_learn_shape", lambda body, lines: None)  # no compile per case
    (known,) = learned.values()
    misses = known.misses
    inside = [i for i, c in enumerate(base) if c.isdigit() and base.rfind("(", 0, i) > base.rfind(")", 0, i)]
    for case in range(1000):
        text = list(base)
        for _ in range(rng.randint(1, 3)):
            # Even cases edit digits inside values (the shape still fits), odd ones anything.
            position = rng.choice(inside) if case % 2 == 0 else rng.randrange(len(text))
            text[position] = rng.choice(edits)
        changed = "".join(text)
        parser._SHAPES.clear()
        reference = _outcome(changed, check_crc=False)
        parser._SHAPES.update(learned)
        assert _outcome(changed, check_crc=False) == reference, changed
    read_by_shape = 1000 - (known.misses - misses)
    assert read_by_shape > 300  # the comparison really exercised the fast path


def test_shape_is_used_for_a_new_value_in_the_same_shape() -> None:
    base = real("v5")
    changed = base.replace("000004.426", "000123.456")
    parser._SHAPES.clear()
    parse(base, check_crc=False)
    known = next(iter(parser._SHAPES.values()))
    misses = known.misses
    reading = parse(changed, check_crc=False)
    assert reading.values["electricity_delivered_1"] == Decimal("123.456")
    assert known.misses == misses  # read by the shape, not line by line


def test_caches_stay_bounded() -> None:
    parser._SHAPES.clear()
    for index in range(200):
        parse(telegram("1-0:1.8.1(000001.000*kWh)", header=f"/TST5 meter {index}"))
    assert len(parser._SHAPES) <= 64
    for day in range(1, 29):
        for hour in range(24):
            parse_timestamp(f"2402{day:02d}{hour:02d}0000W")
    assert len(parser._HOUR_STARTS) <= parser._CACHE_MAX


def test_shape_compiles_are_bounded_for_a_meter_whose_shape_keeps_changing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled = []
    real_shape = parser._Shape

    def counting_shape(lines: list[str]) -> parser._Shape:
        compiled.append(lines[2])
        return real_shape(lines)

    monkeypatch.setattr(parser, "_Shape", counting_shape)
    parser._SHAPES.clear()
    for index in range(320):  # every telegram a new shape: an unknown line with a new code
        reading = parse(telegram(f"1-9:{index}.99.9(1)"))
        assert reading.extras == {f"1-9:{index}.99.9": "(1)"}
    assert len(compiled) <= parser._SHAPES_PER_HEADER + 320 // parser._RELEARN_EVERY


def test_no_shape_is_learned_from_a_huge_or_a_bad_telegram() -> None:
    parser._SHAPES.clear()
    huge = telegram(*[f"1-9:{index}.99.9(1)" for index in range(1000)])
    assert len(parse(huge).extras) == 1000
    with pytest.raises(TelegramError):
        parse(telegram("1-0:1.8.1(x)"))
    assert not any(known.shapes for known in parser._SHAPES.values())


def test_parsing_from_several_threads_gives_the_same_readings() -> None:
    """The backend may parse on more than one thread: the shared caches must not mix results."""
    texts = [real(path.stem) for path in sorted(REAL.glob("*.txt"))]
    expected = [_line_by_line(text) for text in texts]
    parser._SHAPES.clear()
    failures: list[str] = []

    def work(offset: int) -> None:
        for index in range(400):
            position = (index + offset) % len(texts)
            if parse(texts[position]) != expected[position]:
                failures.append(f"thread {offset}: {position}")

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
