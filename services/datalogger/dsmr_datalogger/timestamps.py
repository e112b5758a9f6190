"""DSMR timestamps: ``YYMMDDhhmmss`` in Dutch local time plus ``S`` (summer) or ``W`` (winter).

Dutch time is computed from the EU rule (in force since 1996) rather than from a time-zone
database, so the datalogger needs no tzdata in a slim container image.
"""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

CET = timezone(timedelta(hours=1), "CET")
CEST = timezone(timedelta(hours=2), "CEST")

_TELEGRAM_TIME = re.compile(rb"^0-0:1\.0\.0\((\d{12})([SW])\)", re.MULTILINE)
# The flag says which UTC offset the local time has, so the repeated hour in October is unambiguous.
_ZONES = {"S": CEST, "W": CET}


def _last_sunday_at_one_utc(year: int, month: int) -> datetime:
    last = date(year, month, 31)
    last -= timedelta(days=(last.weekday() - 6) % 7)
    return datetime(last.year, last.month, last.day, 1, tzinfo=UTC)


@lru_cache(maxsize=64)
def summer_time(year: int) -> tuple[datetime, datetime]:
    """Start and end (UTC) of summer time: the last Sundays of March and October, 01:00 UTC."""
    return _last_sunday_at_one_utc(year, 3), _last_sunday_at_one_utc(year, 10)


def dutch_time(moment: datetime) -> datetime:
    """Return ``moment`` (aware) as Dutch local time, with the CET or CEST offset."""
    utc = moment.astimezone(UTC)
    start, end = summer_time(utc.year)
    return utc.astimezone(CEST if start <= utc < end else CET)


def from_dutch_local(naive: datetime) -> datetime:
    """Attach the Dutch offset to a wall-clock time (the repeated October hour counts as summer)."""
    start, end = summer_time(naive.year)
    summer = naive.replace(tzinfo=CEST)
    return summer if start <= summer < end else naive.replace(tzinfo=CET)


def format_timestamp(moment: datetime) -> str:
    """Return ``moment`` (aware) as a DSMR timestamp in Dutch local time."""
    local = dutch_time(moment)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.tzinfo is CEST else "W")


def parse_timestamp(text: str) -> datetime:
    """Return the aware UTC time of a DSMR timestamp such as ``170102192002W``."""
    if len(text) != 13 or text[12] not in _ZONES:
        raise ValueError(f"not a DSMR timestamp: {text!r}")
    naive = datetime.strptime(text[:12], "%y%m%d%H%M%S")  # the flag gives the offset
    return naive.replace(tzinfo=_ZONES[text[12]]).astimezone(UTC)


def telegram_time(telegram: bytes) -> datetime | None:
    """Return the UTC time in a telegram's 0-0:1.0.0 line, or None when it has none."""
    match = _TELEGRAM_TIME.search(telegram)
    if match is None:
        return None
    try:
        return parse_timestamp((match.group(1) + match.group(2)).decode("ascii"))
    except ValueError:
        return None
