"""Which post_save each transaction stages: for readings, and for consumption and statistics records.

``DSMR_BACKEND_POST_SAVE``: ``all`` sends one per newly saved record, ``newest`` (default) the
newest of each kind per transaction, which holds one meter's consumption chunk or one day with
its hours (live that is every record: a minute, a gas value, an hour, a day each come one at a
time; in a catch-up after downtime it is one per kind and chunk or day, so the broker never sees
a flood of stale records), ``off`` none. Records that were already stored (a recomputation,
another replica) never get one. The envelopes are staged in the records' own transaction (the
outbox), so a crash after the commit does not lose them.
"""

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dsmr_backend.analytics import (
    DayStatistics,
    ElectricityConsumption,
    GasConsumption,
    HourStatistics,
    as_record,
)
from dsmr_backend.ingest import newest_per_meter
from dsmr_backend.outputs import json_payload
from dsmr_backend.signals import post_save
from dsmr_backend.storage.rows import MeterReading
from dsmr_shared.envelope import Envelope

READING_KIND = "DsmrReading"
"""The post_save sender of a stored reading (DSMR-reader's model name)."""

KINDS: tuple[type, ...] = (ElectricityConsumption, GasConsumption, HourStatistics, DayStatistics)
"""The records that get a post_save; the sender is the class name (DSMR-reader's model name)."""


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


def envelopes(records: Sequence[Any], mode: str) -> list[Envelope]:
    """The post_save envelopes for the records one transaction stored (one meter's, in time order)."""
    out = []
    for kind in KINDS:
        for record in chosen([r for r in records if type(r) is kind], mode):
            out.append(post_save.envelope(kind.__name__, instance=instance(record), created=True))
    return out


def reading_envelopes(new: Sequence[MeterReading], mode: str) -> list[Envelope]:
    """post_save of the readings one transaction stored: all, the newest per meter, or none."""
    if mode == "off":
        return []
    items = new if mode == "all" else newest_per_meter(new)
    return [post_save.envelope(READING_KIND, instance=json_payload(item), created=True) for item in items]
