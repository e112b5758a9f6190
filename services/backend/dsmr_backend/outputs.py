"""DSMR-reader's output topics, driven by the field table: split reading topics, JSON, meter-stats."""

import json
from dataclasses import dataclass
from typing import Any

from dsmr_backend.fields import Field, Source, Value, fields_in_group
from dsmr_backend.retained import Publish, RetainedTopics
from dsmr_backend.storage.rows import MeterReading

"""publish(topic, payload, qos, retain) without waiting."""

READING_FIELDS = fields_in_group("reading")
STATS_FIELDS = fields_in_group("meter-stats")


@dataclass(frozen=True, slots=True)
class MeterStats:
    """The service-filled meter-stats values (``Source.SERVICE`` rows)."""

    rejected_telegrams: int
    latest_telegram: str


def reading_value(item: MeterReading, field: Field) -> Value | None:
    """A reading-group value; the timestamp is the stored key (DSMR 2.2/3 send none)."""
    if field.key == "timestamp":
        return item.timestamp
    return item.reading.values.get(field.key)


def stats_value(item: MeterReading, field: Field, stats: MeterStats) -> Value | None:
    """A meter-stats value: from the telegram, or from the service for SERVICE rows."""
    if field.source is Source.SERVICE:
        value: Value | None = getattr(stats, field.key, None)
        return value
    return item.reading.values.get(field.key)


def split_payloads(item: MeterReading, stats: MeterStats) -> dict[str, str]:
    """``{"reading/<key>": text, "meter-stats/<key>": text}`` for the values present."""
    out: dict[str, str] = {}
    for field in READING_FIELDS:
        value = reading_value(item, field)
        if value is not None:
            out[f"reading/{field.key}"] = field.format_value(value)
    for field in STATS_FIELDS:
        value = stats_value(item, field, stats)
        if value is not None:
            out[f"meter-stats/{field.key}"] = field.format_value(value)
    return out


def json_payload(item: MeterReading) -> dict[str, Any]:
    """The ``dsmr/json`` object: every reading field (absent as null) plus ``meter``."""
    out: dict[str, Any] = {f.key: f.json_value(reading_value(item, f)) for f in READING_FIELDS}
    out["meter"] = item.meter
    return out


class Outputs:
    """Publishes the newest reading of each meter; unchanged retained values are not re-sent."""

    def __init__(self, publish: Publish, prefix: str) -> None:
        self._publish = publish
        self.prefix = prefix
        self._retained_topics = RetainedTopics(publish)

    def forget(self) -> None:
        """Re-send every retained value next time (after a reconnect the broker may be new)."""
        self._retained_topics.forget()

    def publish_reading(
        self, item: MeterReading, stats: MeterStats, *, default: bool, live: bool = True
    ) -> None:
        """Publish one meter's newest state: per-meter topics, and the plain ones if default.

        ``live=False`` re-sends only the retained state (after a reconnect): ``dsmr/json``
        announces new readings, so it is not repeated.
        """
        roots = [f"{self.prefix}/meter/{item.meter}"]
        if default:
            roots.append(self.prefix)
        split = split_payloads(item, stats)
        document = json.dumps(json_payload(item), separators=(",", ":"))
        for root in roots:
            for suffix, text in split.items():
                self._retained_topics.set(f"{root}/{suffix}", text)
            if live:
                self._publish(f"{root}/json", document, 0, False)

    def publish_rejected(self, meters: list[str], total: int) -> None:
        """Publish the rejected-telegram count (a service-wide counter) on every stats root."""
        text = str(total)
        self._retained_topics.set(f"{self.prefix}/meter-stats/rejected_telegrams", text)
        for meter in meters:
            self._retained_topics.set(f"{self.prefix}/meter/{meter}/meter-stats/rejected_telegrams", text)
