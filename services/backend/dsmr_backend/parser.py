"""Parse a DSMR P1 telegram (text) into a typed ``Reading``; a pure function, no I/O.

Hand-written rather than built on dsmr-parser: dsmr-parser 1.11.2 is 24x slower on the V5
telegram with CRC checking on (960 vs 39 us; it runs every regex of its spec over the whole
telegram; measured side by side by bench/bench_parser.py, figures in BENCHMARKS.md), it keeps
the meter's own names instead of DSMR-reader's, and it reads unlinked M-Bus devices as values.
Over 1,000,000 parses neither parser's memory grew here (ours +0 KiB, dsmr-parser +4 KiB).

How it works: the text from "/" through "!" is framed and its CRC checked once. Line by line (the
reference path), each line is dispatched on its OBIS code (the text before the first "(") through
``_SPECS``, a dict built at import from the field table (``dsmr_backend.fields``); values are read
by slicing. M-Bus lines (``0-1:`` .. ``0-4:``) go to the M-Bus handlers, a few structured lines
(power-failure log, Belgian peak history) to their own handlers, anything else is kept in
``Reading.extras``. Once a meter's telegram was read that way, its shape (see "shapes" below)
reads the next ones in one regular-expression match plus bulk conversions.

Timestamps ``YYMMDDhhmmss`` + ``S``/``W`` are Dutch local time (Europe/Amsterdam); the flag picks
the side of the repeated autumn hour (S = summer time = fold 0, W = fold 1); stored as UTC. A
timestamp without a flag (DSMR 2.2/3 gas) is local time, fold 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from zoneinfo import ZoneInfo

from dsmr_backend.fields import (
    EQUIPMENT_ID_KEYS,
    FIELDS,
    FIELDS_BY_OBIS,
    UNIT_CONVERSIONS,
    Field,
    Kind,
    Source,
    Value,
)
from dsmr_backend.reading import MbusDevice, MeterIdentity, MonthlyPeak, PowerFailure, Reading
from dsmr_shared.crc import crc16
from dsmr_shared.errors import DsmrError
from dsmr_shared.meters import decode_hex_text as shared_decode_hex_text

__all__ = ["TelegramError", "decode_hex_text", "parse", "parse_timestamp"]

LOCAL_TZ = ZoneInfo("Europe/Amsterdam")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_TIME = "632525252525"  # what meters send for "no timestamp" (unlinked device, empty month)
MBUS_DEFAULT_UNITS = {3: "m3", 4: "GJ", 7: "m3"}  # when a device sends its reading without unit
PEAK_HISTORY_OBIS = "1-0:1.6.0"
_MAX_LINE_IN_ERROR = 120


class TelegramError(DsmrError):
    """A telegram could not be parsed: names the line number, the line and the reason."""

    def __init__(self, line_number: int, line: str, reason: str) -> None:
        self.line_number = line_number
        self.line = line
        self.reason = _shorten(reason)
        super().__init__(f"line {line_number}: {self.reason}: {_shorten(line)!r}")


def _shorten(text: str) -> str:
    """Keep error messages readable (and logs small) when a line is huge."""
    return text if len(text) <= _MAX_LINE_IN_ERROR else text[:_MAX_LINE_IN_ERROR] + "..."


class _ValueProblemError(ValueError):
    """A value did not parse; the parse loop adds the line number and the line."""


class _Builder:
    """What the line handlers fill in while a telegram is read (a plain class: built per parse)."""

    __slots__ = ("extras", "failures", "history", "mbus", "raw_ids", "values")

    def __init__(self) -> None:
        self.values: dict[str, Value] = {}
        self.mbus: dict[int, MbusDevice] = {}
        self.extras: dict[str, str] = {}
        self.raw_ids: dict[str, str] = {}  # HEX_TEXT key -> text as sent
        self.failures: tuple[PowerFailure, ...] = ()
        self.history: tuple[MonthlyPeak, ...] = ()


Handler = Callable[[str, _Builder], None]
MbusHandler = Callable[[str, MbusDevice], None]

# ---------------------------------------------------------------- value readers


def _number(text: str) -> Decimal:
    """Read a plain decimal number ("000004.426"); rejects exponents, spaces, other digits."""
    body = text[1:] if text[:1] == "-" else text
    if not (body.replace(".", "", 1).isdigit() and body.isascii()):
        raise _ValueProblemError(f"{text!r} is not a number")
    return Decimal(text)


def _convert(number: Decimal, sent: str, unit: str | None) -> Decimal:
    """Convert a number from its sent unit to the canonical unit, exactly."""
    if sent == unit:
        return number
    conversion = UNIT_CONVERSIONS.get(sent)
    if conversion is None or conversion[0] != unit:
        raise _ValueProblemError(f"unit {sent!r} where {unit or 'no unit'} is expected")
    return number.scaleb(conversion[1])


def _decimal(text: str, unit: str | None) -> Decimal | None:
    """Read "value*unit" (a bare value is taken as canonical) into ``unit``; "" is no value."""
    if not text:
        return None
    star = text.find("*")
    if star < 0:
        return _number(text)
    return _convert(_number(text[:star]), text[star + 1 :], unit)


def _integer(text: str) -> int:
    """Read an unsigned integer ("00013")."""
    if not (text.isdigit() and text.isascii()):
        raise _ValueProblemError(f"{text!r} is not an integer")
    return int(text)


def _split_unit(text: str) -> tuple[Decimal, str | None]:
    """Read "value*unit" into the number and the unit as sent (None when absent)."""
    star = text.find("*")
    if star < 0:
        return _number(text), None
    return _number(text[:star]), text[star + 1 :]


# Local hour ("YYMMDDhh" + flag) -> its start in UTC. Exact: Dutch clocks change on the hour,
# so within one local hour the UTC offset is fixed. A stream stays in one hour for hundreds of
# telegrams, so this spares the zoneinfo conversion; cleared when full, so memory stays flat.
_HOUR_STARTS: dict[str, datetime] = {}
_CACHE_MAX = 4096


def parse_timestamp(text: str) -> datetime | None:
    """Read YYMMDDhhmmss[S|W] (Dutch local time) as an aware UTC datetime; None when empty.

    Raises ValueError on anything else. "632525252525" (what meters send for "no time") is None.
    """
    size = len(text)
    if size == 13:
        flag = text[12]
        if flag != "S" and flag != "W":  # noqa: PLR1714 - two compares beat a tuple lookup here
            raise _ValueProblemError(f"timestamp {text!r}: flag {flag!r} is not S or W")
    elif size == 12:
        flag = ""
    elif size == 0:
        return None
    else:
        raise _ValueProblemError(f"timestamp {text!r} is not YYMMDDhhmmss plus S or W")
    digits = text[:12]
    if not (digits.isdigit() and digits.isascii()):
        raise _ValueProblemError(f"timestamp {text!r} is not YYMMDDhhmmss plus S or W")
    if digits == NO_TIME:
        return None
    seconds = int(digits[8:10]) * 60 + int(digits[10:12])
    if digits[8] > "5" or digits[10] > "5":
        raise _ValueProblemError(f"timestamp {text!r}: minute or second out of range")
    hour_key = text[:8] + flag
    start = _HOUR_STARTS.get(hour_key)
    if start is None:
        start = _hour_start(digits, fold=flag == "W")
        if len(_HOUR_STARTS) >= _CACHE_MAX:
            _HOUR_STARTS.clear()
        _HOUR_STARTS[hour_key] = start
    return start + timedelta(seconds=seconds)


def _hour_start(digits: str, *, fold: bool) -> datetime:
    """The UTC start of a Dutch local hour; fold picks the second of a repeated hour."""
    year = int(digits[0:2])
    # Two-digit years: 70..99 are the 1900s so the meters' 1970 "never read" placeholder stays.
    year += 1900 if year >= 70 else 2000
    try:
        local = datetime(
            year, int(digits[2:4]), int(digits[4:6]), int(digits[6:8]), tzinfo=LOCAL_TZ, fold=fold
        )
    except ValueError as exc:
        raise _ValueProblemError(f"timestamp {digits!r}: {exc}") from None
    return local.astimezone(UTC)


_HEX_TEXTS: dict[str, str] = {}  # raw -> decoded: identifiers repeat in every telegram


def decode_hex_text(raw: str) -> str:
    """Decode hex-encoded printable ASCII ("4B38..." -> "K8..."); other text is returned as is."""
    decoded = _HEX_TEXTS.get(raw)
    if decoded is None:
        decoded = shared_decode_hex_text(raw)
        if len(_HEX_TEXTS) >= _CACHE_MAX:
            _HEX_TEXTS.clear()
        _HEX_TEXTS[raw] = decoded
    return decoded


def _one(text: str) -> str:
    """Check that a line carries exactly one "(value)"."""
    if ")(" in text:
        raise _ValueProblemError("expected one value, got several")
    return text


# ---------------------------------------------------------------- line handlers from the table


def _row_handler(row: Field) -> Handler:
    """Build the handler that stores one table row's value."""
    key, unit = row.key, row.unit
    if row.kind is Kind.DECIMAL:

        def decimal(text: str, b: _Builder) -> None:
            value = _decimal(text, unit)
            if value is not None:
                b.values[key] = value

        return decimal
    if row.kind is Kind.INTEGER:

        def integer(text: str, b: _Builder) -> None:
            if text:  # "()": no value, as for every other kind
                b.values[key] = _integer(text)

        return integer
    if row.kind is Kind.TIMESTAMP:

        def timestamp(text: str, b: _Builder) -> None:
            value = parse_timestamp(_one(text))
            if value is not None:
                b.values[key] = value

        return timestamp
    if row.kind is Kind.TIMESTAMPED_DECIMAL:
        return _timestamped_handler(row)
    return _text_handler(key, decode=row.kind is Kind.HEX_TEXT)


def _text_handler(key: str, *, decode: bool) -> Handler:
    """Store text as sent, or decoded from hex; an empty value is no value."""

    def text_value(text: str, b: _Builder) -> None:
        if not _one(text):
            return
        if decode:
            value = decode_hex_text(text)
            if value != text:
                b.raw_ids[key] = text
            b.values[key] = value
        else:
            b.values[key] = text

    return text_value


def _timestamped_handler(row: Field) -> Handler:
    """(time)(value*unit): the value under the row's key, the time under its time_key."""
    key, unit, time_key = row.key, row.unit, row.time_key
    assert time_key is not None

    def timestamped(text: str, b: _Builder) -> None:
        parts = text.split(")(")
        if len(parts) != 2:
            raise _ValueProblemError("expected (time)(value)")
        when = parse_timestamp(parts[0])
        value = _decimal(parts[1], unit)
        if value is not None:
            b.values[key] = value
        if when is not None:
            b.values[time_key] = when

    return timestamped


def _unit_choice_handler(rows: tuple[Field, ...]) -> Handler:
    """Several rows share an OBIS code: the sent unit picks the row (0-0:17.0.0 kW or A)."""
    by_unit = {row.unit: row for row in rows}

    def by_sent_unit(text: str, b: _Builder) -> None:
        if not text:
            return  # "()": no value
        number, sent = _split_unit(text)
        canonical = UNIT_CONVERSIONS.get(sent or "", (sent, 0))[0]
        row = by_unit.get(canonical)
        if row is None:
            raise _ValueProblemError(f"unit {sent!r} is not one of {sorted(u or '-' for u in by_unit)}")
        b.values[row.key] = _convert(number, sent, row.unit) if sent else number

    return by_sent_unit


# ---------------------------------------------------------------- structured lines


def _power_failure_log(text: str, b: _Builder) -> None:
    """1-0:99.97.0(count)(0-0:96.7.19)(end time)(duration*s)...: the power-failure log."""
    if not text:
        return  # "()": an empty log, as (0)(0-0:96.7.19)
    parts = text.split(")(")
    count = _integer(parts[0])
    entries = parts[2:]
    if len(parts) < 2 or len(entries) != 2 * count:
        raise _ValueProblemError(f"power-failure log says {count} entries but has {len(entries) / 2:g}")
    failures = []
    for index in range(0, len(entries), 2):
        duration, unit = _split_unit(entries[index + 1])
        if unit not in (None, "s"):
            raise _ValueProblemError(f"power-failure duration unit {unit!r} is not s")
        failures.append(PowerFailure(parse_timestamp(entries[index]), int(duration)))
    b.failures = tuple(failures)


def _peak_history(text: str, b: _Builder) -> None:
    """0-0:98.1.0(count)(1-0:1.6.0)(1-0:1.6.0)(month)(time)(value*kW)...: Belgian peaks.

    Other meters use 98.1.0 for other billing data (E.ON Hungary): that is kept as an extra.
    """
    parts = text.split(")(")
    if len(parts) < 3 or parts[1] != PEAK_HISTORY_OBIS or parts[2] != PEAK_HISTORY_OBIS:
        b.extras["0-0:98.1.0"] = f"({text})"
        return
    count = _integer(parts[0])
    entries = parts[3:]
    if len(entries) != 3 * count:
        raise _ValueProblemError(f"peak history says {count} months but has {len(entries) / 3:g}")
    b.history = tuple(
        MonthlyPeak(
            parse_timestamp(entries[i]), parse_timestamp(entries[i + 1]), _number_in_kw(entries[i + 2])
        )
        for i in range(0, len(entries), 3)
    )


def _number_in_kw(text: str) -> Decimal:
    """A peak value: a number in kW (or W, converted)."""
    number, sent = _split_unit(text)
    return number if sent is None else _convert(number, sent, "kW")


# ---------------------------------------------------------------- M-Bus lines (0-1: .. 0-4:)


def _mbus_type(text: str, device: MbusDevice) -> None:
    device.device_type = _integer(text)  # digits only, so one value


def _mbus_id(text: str, device: MbusDevice) -> None:
    if _one(text):
        device.equipment_id_raw = text
        device.equipment_id = decode_hex_text(text)


def _mbus_valve(text: str, device: MbusDevice) -> None:
    if text:
        device.valve_position = _integer(text)


def _mbus_set_reading(device: MbusDevice, when: datetime | None, value: str) -> None:
    """Store a device reading; an unlinked device (no time, or 1970) is read as no value."""
    if when is None or when == EPOCH:  # the value is a placeholder too (often empty or 0)
        device.value = device.unit = device.timestamp = None
        return
    device.value, device.unit = _split_unit(value)
    device.timestamp = when


def _mbus_reading(text: str, device: MbusDevice) -> None:
    """0-n:24.2.1(time)(value*unit) (24.2.3 on Belgian meters)."""
    parts = text.split(")(")
    if len(parts) != 2:
        raise _ValueProblemError("expected (time)(value*unit)")
    _mbus_set_reading(device, parse_timestamp(parts[0]), parts[1])


def _mbus_legacy_reading(text: str, device: MbusDevice) -> None:
    """DSMR 2.2/3: 0-n:24.3.0(time)(00)(60)(1)(0-n:24.2.1)(m3) with (value) on the next line."""
    parts = text.split(")(")
    if len(parts) != 7:
        raise _ValueProblemError("expected (time)(..)(..)(..)(obis)(unit) and (value) on the next line")
    unit = parts[5]
    value = parts[6] if not unit else f"{parts[6]}*{unit}"
    _mbus_set_reading(device, parse_timestamp(parts[0]), value)


_MBUS_HANDLERS: dict[str, MbusHandler] = {
    "24.1.0": _mbus_type,
    "96.1.0": _mbus_id,
    "96.1.1": _mbus_id,
    "24.2.1": _mbus_reading,
    "24.2.3": _mbus_reading,
    "24.3.0": _mbus_legacy_reading,
    "24.4.0": _mbus_valve,
}


def _mbus_dispatch(channel: int, handler: MbusHandler) -> Handler:
    """Bind an M-Bus handler to its channel's device (created on first use).

    The type and identifier lines (two per device in every telegram) get their own closures
    with the work inline: one call per line instead of three.
    """
    if handler is _mbus_type:

        def on_type(text: str, b: _Builder) -> None:
            device = b.mbus.get(channel) or _new_device(b, channel)
            if not (text.isdigit() and text.isascii()):
                raise _ValueProblemError(f"{text!r} is not an integer")
            device.device_type = int(text)

        return on_type
    if handler is _mbus_id:

        def on_id(text: str, b: _Builder) -> None:
            device = b.mbus.get(channel) or _new_device(b, channel)
            if text:
                device.equipment_id_raw = _one(text)
                device.equipment_id = _HEX_TEXTS.get(text) or decode_hex_text(text)

        return on_id

    def on_channel(text: str, b: _Builder) -> None:
        handler(text, b.mbus.get(channel) or _new_device(b, channel))

    return on_channel


def _new_device(b: _Builder, channel: int) -> MbusDevice:
    device = b.mbus[channel] = MbusDevice(channel)
    return device


# How a line is read: the inline fast paths of _read_lines, or else the spec's handler.
_DECIMAL, _INTEGER, _TEXT, _OTHER = 0, 1, 2, 3
_NUMBER_CHARS = "0123456789.-"
Spec = tuple[int, str, int, str, Handler, bool]
"""(how to read, key, -len(ending), the fast path's line ending, handler, "()" does nothing)."""


def _row_spec(rows: tuple[Field, ...]) -> Spec:
    """The spec of the table rows of one OBIS code."""
    row = rows[0]
    if len(rows) > 1:
        return (_OTHER, row.key, -1, ")", _unit_choice_handler(rows), True)
    fast = {Kind.DECIMAL: _DECIMAL, Kind.INTEGER: _INTEGER, Kind.TEXT: _TEXT}
    ending = f"*{row.unit})" if row.unit and row.kind is Kind.DECIMAL else ")"
    empty_is_nothing = row.kind is not Kind.TIMESTAMPED_DECIMAL
    return (fast.get(row.kind, _OTHER), row.key, -len(ending), ending, _row_handler(row), empty_is_nothing)


def _build_specs() -> dict[str, Spec]:
    """OBIS code -> spec, from the table, the structured lines and the M-Bus channels 1..4.

    EasyMeter's "*255" suffixed codes are registered too, so no line needs rewriting.
    """
    specs: dict[str, Spec] = {obis: _row_spec(rows) for obis, rows in FIELDS_BY_OBIS.items()}
    specs["1-0:99.97.0"] = (_OTHER, "power_failures", -1, ")", _power_failure_log, True)
    specs["0-0:98.1.0"] = (_OTHER, "peak_history", -1, ")", _peak_history, False)
    for channel in range(1, 5):
        for code, handler in _MBUS_HANDLERS.items():
            obis = f"0-{channel}:{code}"
            # "()" still creates the device (the reference lists it too): not "nothing".
            specs[obis] = (_OTHER, obis, -1, ")", _mbus_dispatch(channel, handler), False)
    specs.update({f"{obis}*255": spec for obis, spec in list(specs.items())})
    return specs


_SPECS = _build_specs()
_MBUS_ROWS: dict[int | None, tuple[Field, ...]] = {
    kind: tuple(row for row in FIELDS if row.source is Source.MBUS and row.mbus_type == kind)
    for kind in {row.mbus_type for row in FIELDS if row.source is Source.MBUS}
}
"""M-Bus device type -> the table rows its first device fills."""

# ---------------------------------------------------------------- the telegram


def _frame(telegram: str, check_crc: bool) -> tuple[int, int]:
    """Find "/" and "!" and check the CRC after "!" when there is one."""
    start = telegram.find("/")
    if start < 0:
        raise TelegramError(1, telegram[:_MAX_LINE_IN_ERROR], "no '/' header line")
    end = telegram.find("!", start)
    if end < 0:
        text = telegram[start:].rstrip()
        last = text.rsplit("\n", 1)[-1]
        raise TelegramError(text.count("\n") + 1, last, "no '!' end line")
    if check_crc:
        _check_crc(telegram, start, end)
    return start, end


def _check_crc(telegram: str, start: int, end: int) -> None:
    """CRC-16/ARC over "/" through "!" (latin-1), 1 to 4 hex digits; absent is fine."""
    newline = telegram.find("\n", end)
    line = telegram[end : newline if newline >= 0 else len(telegram)].rstrip()
    sent = line[1:]
    if not sent:
        return
    if len(sent) > 4 or sent.strip("0123456789ABCDEFabcdef"):
        raise _crc_error(telegram, start, end, "CRC is not 1 to 4 hex digits")
    try:
        data = telegram[start : end + 1].encode("latin-1")
    except UnicodeEncodeError:
        raise _crc_error(telegram, start, end, "telegram has characters outside latin-1") from None
    computed = crc16(data)
    if computed != int(sent, 16):
        raise _crc_error(telegram, start, end, f"bad CRC: sent {sent}, computed {computed:04X}")


def _crc_error(telegram: str, start: int, end: int, reason: str) -> TelegramError:
    """An error on the "!" line (its number counted only now: errors are the rare case)."""
    newline = telegram.find("\n", end)
    line = telegram[end : newline if newline >= 0 else len(telegram)].rstrip()
    return TelegramError(telegram.count("\n", start, end) + 1, line, reason)


def _join_continuations(lines: list[str]) -> list[str]:
    """DSMR 2.2/3 put the gas value on its own "(value)" line: join it to the line before.

    The continuation's place is left empty so the line numbers in errors stay right.
    """
    for index in range(1, len(lines)):
        if lines[index][:1] == "(" and lines[index - 1]:
            lines[index - 1] += lines[index]
            lines[index] = ""
    return lines


def parse(telegram: str, *, check_crc: bool = True, received_at: datetime | None = None) -> Reading:
    """Parse one telegram; raises TelegramError naming the line and the reason.

    ``received_at`` becomes the reading's timestamp when the telegram has none (DSMR 2.2/3),
    as DSMR-reader uses its clock then; without it such a reading's timestamp is None.
    """
    start, end = _frame(telegram, check_crc)
    body = telegram[start:end]
    shapes = _SHAPES.get(body[: body.find("\n")])
    if shapes is not None:
        matched = _read_by_shape(shapes, body)
        if matched is not None:
            return _finish(matched[0], matched[1], received_at)
    lines = body.splitlines()
    continued = "\n(" in body  # rare: the DSMR 2.2/3 two-line gas value
    if continued:
        lines = _join_continuations(lines)
    header = lines[0][1:]
    if not header:
        raise TelegramError(1, lines[0], "empty header line")
    b = _Builder()
    _read_lines(lines, b)
    if not continued and body.endswith("\n") and len(body) <= _SHAPE_MAX_CHARS:
        _learn_shape(body, lines)  # only from a good telegram of a sane size
    return _finish(header, b, received_at)


def _read_lines(lines: list[str], b: _Builder) -> None:
    """Dispatch every data line on its OBIS code; unknown codes are kept as extras.

    Decimal, integer and text rows in their expected form (most lines) are read inline, without
    a call per line: this loop is where the time goes (see the module docstring). Anything
    else (another unit, no unit, an empty value, an error) goes to the row's handler.
    """
    specs, values, digits = _SPECS, b.values, _NUMBER_CHARS
    for line in lines:
        paren = line.find("(")
        spec = specs.get(line[:paren]) if paren > 0 else None
        if spec is None:
            _unknown_line(lines, line, paren, b)
            continue
        kind, key, cut, ending, handler, _ = spec
        if kind != _OTHER and line.endswith(ending):
            text = line[paren + 1 : cut]
            try:
                if kind == _DECIMAL:  # "(000004.426*kWh)" in the row's own unit
                    if text and not text.strip(digits):
                        values[key] = Decimal(text)
                        continue
                elif kind == _INTEGER:  # "(00013)"
                    if text.isdigit() and text.isascii():
                        values[key] = int(text)
                        continue
                elif text and ")(" not in text:  # _TEXT: "(50)"
                    values[key] = text
                    continue
            except ArithmeticError:  # "1.2.3": the handler names the problem
                pass
        _handle(lines, line, paren, handler, b)


def _handle(lines: list[str], line: str, paren: int, handler: Handler, b: _Builder) -> None:
    """Run a row's handler; turn a bad value into a TelegramError naming the line."""
    try:
        if line[-1] != ")":
            raise _ValueProblemError("line does not end with ')'")
        handler(line[paren + 1 : -1], b)
    except (ValueError, ArithmeticError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "not a number"
        # The first line with this text is the one that failed: an earlier twin would have too.
        raise TelegramError(lines.index(line) + 1, line, reason) from None


def _unknown_line(lines: list[str], line: str, paren: int, b: _Builder) -> None:
    """A line no spec names: blank, the header, an unknown OBIS code (kept), or garbage."""
    if not line or line is lines[0]:
        return
    if paren <= 0 or line[-1] != ")":
        reason = "not an OBIS code followed by (value)"
        raise TelegramError(lines.index(line) + 1, line, reason)
    if _OBIS.fullmatch(line, 0, paren) is None:
        reason = f"{line[:paren]!r} is not an OBIS code"
        raise TelegramError(lines.index(line) + 1, line, reason)
    b.extras[line[:paren]] = line[paren:]


_OBIS = re.compile(r"[0-9]{1,3}-[0-9]{1,3}:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?:\*[0-9]{1,3})?")
"""An OBIS reduced ID code as P1 sends it: A-B:C.D.E with an optional *F (EasyMeter)."""


# ---------------------------------------------------------------- shapes: the fast path
#
# Every telegram of a meter has the same shape: the same lines in the same order, each number in
# the same unit. After a telegram is read line by line, its shape becomes one regular expression
# (one group per value, numbers of the fast kinds checked by the pattern itself). The next
# telegram with that header is then checked and split in one C call, its numbers converted in
# bulk, and only the structured lines (times, M-Bus, logs, texts) go through their handlers.
# A telegram that does not fit exactly (another unit, a new line, a bad value) is read line by
# line as before, so the result never depends on the shape: tests/backend/test_parser_cases.py
# checks both paths give the same Reading. The line-by-line path is the reference.

_EOL = r"(?:\r?\n)"
# Anything str.splitlines() would not split on, so a shape's lines are exactly splitlines' lines.
_VALUE = r"([^\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]*)"
_SHAPES_PER_HEADER = 4
_SHAPE_MAX_CHARS = 8192  # real telegrams are 0.3 to 2 kB; never compile a huge payload
_RELEARN_EVERY = 32  # misses between two new shapes once a header has its 4: bounds compiling


# What the shape does with a group of each fast kind: (pattern of the value, conversion).
_BULK: dict[int, tuple[str, Callable[[str], Value]]] = {
    _DECIMAL: (r"(-?[0-9]+(?:\.[0-9]+)?)", Decimal),
    _INTEGER: (r"([0-9]+)", int),
    _TEXT: (r"([^()\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+)", str),
}


class _Shape:
    """A compiled telegram shape: the pattern and what to do with each group."""

    __slots__ = ("bulk", "calls", "header", "pattern")

    def __init__(self, lines: list[str]) -> None:
        parts: list[str] = []
        bulk: dict[int, tuple[list[str], list[int]]] = {kind: ([], []) for kind in _BULK}
        calls: list[tuple[int, Handler]] = []
        group = 0
        for line in lines[1:]:
            paren = line.find("(")
            obis = line[:paren]
            spec = _SPECS.get(obis) if line else None
            if not line:
                parts.append("")
                continue
            if spec is not None and spec[5] and line.endswith("()"):
                parts.append(re.escape(line))  # stays empty in this meter's telegrams: no group
                continue
            kind = spec[0] if spec is not None and line.endswith(spec[3]) else _OTHER
            if spec is not None and kind != _OTHER:
                parts.append(re.escape(obis) + r"\(" + _BULK[kind][0] + re.escape(spec[3]))
                bulk[kind][0].append(spec[1])
                bulk[kind][1].append(group)
            else:
                parts.append(re.escape(obis) + r"\(" + _VALUE + r"\)")
                calls.append((group, spec[4] if spec is not None else _extra_handler(obis)))
            group += 1
        self.header = lines[0][1:]
        self.pattern = re.compile(re.escape(lines[0]) + _EOL + _EOL.join(parts) + _EOL)
        self.bulk = tuple(
            (tuple(keys), _getter(groups), _BULK[kind][1]) for kind, (keys, groups) in bulk.items() if keys
        )
        self.calls = tuple(calls)

    def read(self, body: str) -> _Builder | None:
        """The telegram read by this shape, or None when it does not fit exactly."""
        match = self.pattern.fullmatch(body)
        if match is None:
            return None
        groups = match.groups()
        b = _Builder()
        values = b.values
        for keys, pick, convert in self.bulk:
            values.update(zip(keys, map(convert, pick(groups)), strict=True))
        try:
            for index, handler in self.calls:
                handler(groups[index], b)
        except (ValueError, ArithmeticError):
            return None  # the line-by-line path reports it, with the line number
        return b


class _HeaderShapes:
    """The shapes seen for one header line, most recently used first."""

    __slots__ = ("misses", "shapes")

    def __init__(self) -> None:
        self.shapes: list[_Shape] = []
        self.misses = 0


_SHAPES: dict[str, _HeaderShapes] = {}  # header line -> its shapes; cleared when full


def _getter(indexes: list[int]) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """A function picking these groups as a tuple (itemgetter returns a bare item for one)."""
    if len(indexes) >= 2:
        return itemgetter(*indexes)
    if indexes:
        index = indexes[0]
        return lambda groups: (groups[index],)
    return lambda groups: ()


def _extra_handler(obis: str) -> Handler:
    """Keep an unknown line's value text as an extra (as _unknown_line does)."""

    def keep(text: str, b: _Builder) -> None:
        b.extras[obis] = f"({text})"

    return keep


def _read_by_shape(known: _HeaderShapes, body: str) -> tuple[str, _Builder] | None:
    """Try the header's shapes; the first that fits exactly reads the telegram."""
    shapes = known.shapes  # lists are replaced, never changed in place: safe across threads
    for position, shape in enumerate(shapes):
        b = shape.read(body)
        if b is not None:
            if position:
                known.shapes = [shape, *(other for other in shapes if other is not shape)]
            return shape.header, b
    known.misses += 1
    return None


def _learn_shape(body: str, lines: list[str]) -> None:
    """Remember this telegram's shape, within the bounds (per header, and compiles per miss)."""
    key = body[: body.find("\n")]
    known = _SHAPES.get(key)
    if known is None:
        if len(_SHAPES) >= 64:
            _SHAPES.clear()
        known = _SHAPES[key] = _HeaderShapes()
    full = len(known.shapes) >= _SHAPES_PER_HEADER
    if full and known.misses % _RELEARN_EVERY:
        return
    if not lines[0][1:] or lines[0] != key.rstrip("\r"):
        return
    known.shapes = [_Shape(lines), *known.shapes][:_SHAPES_PER_HEADER]


def _finish(header: str, b: _Builder, received_at: datetime | None) -> Reading:
    """Fill the M-Bus-derived fields and the meter identity; build the Reading."""
    values = b.values
    if b.mbus:
        _fill_mbus_fields(b)
    timestamp = values.get("timestamp")
    if not isinstance(timestamp, datetime):
        timestamp = None if received_at is None else received_at.astimezone(UTC)
    return Reading(_identity(header, b), timestamp, values, b.mbus, b.failures, b.history, b.extras)


_IDENTITIES: dict[tuple[str, str | None, str | None], MeterIdentity] = {}  # same every telegram


def _identity(header: str, b: _Builder) -> MeterIdentity:
    """The meter's identity: header and the first equipment id present (EQUIPMENT_ID_KEYS)."""
    equipment_id = raw_id = None
    for key in EQUIPMENT_ID_KEYS:
        value = b.values.get(key)
        if value is not None:
            equipment_id = str(value)
            raw_id = b.raw_ids.get(key, equipment_id)
            break
    cache_key = (header, equipment_id, raw_id)
    identity = _IDENTITIES.get(cache_key)
    if identity is None:
        if len(_IDENTITIES) >= _CACHE_MAX:
            _IDENTITIES.clear()
        identity = _IDENTITIES[cache_key] = MeterIdentity(header, equipment_id, raw_id)
    return identity


def _fill_mbus_fields(b: _Builder) -> None:
    """Default units by device type; the first device of a type fills its table rows."""
    done: set[int | None] = set()
    for channel in sorted(b.mbus):
        device = b.mbus[channel]
        if device.value is None or device.device_type in done:
            continue
        done.add(device.device_type)
        if device.unit is None and device.device_type is not None:
            device.unit = MBUS_DEFAULT_UNITS.get(device.device_type)
        for row in _MBUS_ROWS.get(device.device_type, ()):
            if row.kind is Kind.TIMESTAMP:
                if device.timestamp is not None:
                    b.values[row.key] = device.timestamp
            elif device.unit == row.unit:
                b.values[row.key] = device.value
