"""post_save for consumption and statistics records, with the same burst policy as readings.

``DSMR_BACKEND_POST_SAVE``: ``all`` sends one per newly saved record, ``newest`` (default) the
newest of each kind per meter and statistics round (live that is every record: a minute, a gas
value, an hour, a day each come one at a time; in a catch-up after downtime it is one per kind
and round, so the broker never sees a flood of stale records), ``off`` none. Records that were
already stored (a recomputation, another replica) never get one.
"""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dsmr_backend.analytics import as_record
from dsmr_backend.signals import post_save
from dsmr_backend.statistics_task import Saved

KINDS = (
    ("ElectricityConsumption", "minutes"),
    ("GasConsumption", "gas"),
    ("HourStatistics", "hours"),
    ("DayStatistics", "days"),
)
"""post_save sender (DSMR-reader's model name) -> the ``Saved`` list holding those records."""


def json_value(value: Any) -> Any:
    """Decimals as JSON numbers, times as ISO 8601 UTC, days as YYYY-MM-DD."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def instance(record: Any) -> dict[str, Any]:
    """A record as post_save's ``instance``: DSMR-reader's field names plus ``meter``."""
    return {key: json_value(value) for key, value in as_record(record).items()}


def chosen(records: Sequence[Any], mode: str) -> Sequence[Any]:
    """The records of one kind that get a post_save under ``mode``."""
    if mode == "off" or not records:
        return []
    return records if mode == "all" else records[-1:]


def send_post_save(saved: Saved, mode: str) -> int:
    """Send post_save for what a round saved; return how many were sent."""
    sent = 0
    for kind, attribute in KINDS:
        for record in chosen(getattr(saved, attribute), mode):
            post_save.send(sender=kind, instance=instance(record), created=True)
            sent += 1
    return sent
