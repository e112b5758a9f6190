"""Retention as DSMR-reader does it: after N days keep only the first and last reading of each hour.

We also keep, for each hour, the reading that first carried that hour's first gas (and water) value,
so recomputing hour and day statistics from the thinned readings gives identical rows: every
boundary reading ("first at or after") survives. Per-minute consumption and quarter-hour peaks are
computed long before readings get old enough to be thinned.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from dsmr_backend.analytics.model import ReadingPoint
from dsmr_backend.analytics.periods import HOUR, floor_to


def _first_and_last_per_hour(points: list[ReadingPoint]) -> set[datetime]:
    keep: set[datetime] = set()
    current: datetime | None = None
    for index, point in enumerate(points):
        hour = floor_to(point.timestamp, HOUR)
        if hour != current:
            keep.add(point.timestamp)
            if index:
                keep.add(points[index - 1].timestamp)
            current = hour
    if points:
        keep.add(points[-1].timestamp)
    return keep


def _first_carriers(points: list[ReadingPoint], attribute: str) -> set[datetime]:
    """Readings that first carried the first sub-meter value of each hour (by the sub-meter's time)."""
    keep: set[datetime] = set()
    hours_seen: set[datetime] = set()
    newest: datetime | None = None
    for point in points:
        at = getattr(point, f"{attribute}_timestamp") or point.timestamp
        if getattr(point, attribute) is None or (newest is not None and at <= newest):
            continue
        newest = at
        hour = floor_to(at, HOUR)
        if hour not in hours_seen:
            hours_seen.add(hour)
            keep.add(point.timestamp)
    return keep


def readings_to_delete(points: Iterable[ReadingPoint], *, now: datetime, keep_days: int) -> list[datetime]:
    """Timestamps of one meter's readings to delete: in whole hours older than ``keep_days``, all
    but the first and last of each hour and the carriers of each hour's first gas/water value."""
    cutoff = floor_to(now - timedelta(days=keep_days), HOUR)
    ordered = sorted(points, key=lambda p: p.timestamp)
    keep = (
        _first_and_last_per_hour(ordered)
        | _first_carriers(ordered, "gas")
        | _first_carriers(ordered, "water")
    )
    return [p.timestamp for p in ordered if p.timestamp < cutoff and p.timestamp not in keep]
